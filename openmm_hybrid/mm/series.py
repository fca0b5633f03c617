"""A ligand series built against one protein: parameters in parallel worker processes, one folder per ligand.

:func:`build_series` is what ``openmm-hybrid build --ligands series.sdf`` runs, and the entry point
for campaigns over many ligands.  The protein is prepared once; every ligand's GAFF2 parameters
are computed in worker processes (AM1-BCC is the slow step, one sqm run per molecule), through
the shared disk cache; then each ligand is built into its own complete folder.  A ligand that
fails (unreadable record, refused by ``check_ligand``, sqm or antechamber failure, a build error)
is recorded and the others go on.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .._files import check_output_folder, output_folder, write_text_atomic
from .._util import progress, set_quiet
from ..errors import HybridError
from .builder import build_system, prepare_build_protein
from .ligand import SUPPORTED_EXTENSIONS, Ligand, LigandRecord, ligand_from_record, load_ligand, read_ligand_records
from .parameters import parametrize

__all__ = ["build_series", "SeriesResult", "SeriesLigand", "SERIES_FILE", "load_series_result"]

#: The summary file of a series folder.
SERIES_FILE = "series.json"
#: Files every complete ligand folder holds.
BUILD_FILES = ("system.xml", "topology.pdb", "state.xml", "build.json")


@dataclass
class SeriesLigand:
    """One ligand of a series and what happened to it (an entry of ``series.json``).

    Attributes
    ----------
    index : int
        Position in the series (file order, from 0).
    name : str
        The record's title (or the ligand's name for a list of molecules).
    folder : str
        Its folder, relative to the series folder.
    status : {"built", "failed", "pending"}
        ``built``: the folder is complete; ``failed``: no folder (see ``error``); ``pending``:
        not reached yet (an interrupted run).
    complete : bool
        The folder exists and holds all its files (``system.xml``, ``topology.pdb``,
        ``state.xml``, ``build.json``).
    stage : str or None
        Where a failure happened: ``read``, ``check``, ``parameters`` or ``build``.
    error : str or None
        The failure's message.
    smiles : str or None
        Canonical SMILES of the ligand (once read).
    net_charge : int or None
        Net charge in e.
    ligand_atoms : int or None
        Atoms of the ligand, hydrogens included.
    atom_counts : dict or None
        The build's atom counts (``total``, ``protein``, ``ligand``, ``water``, ``ions``, ...).
    parameters : {"computed", "cache", "given"} or None
        Where the ligand's parameters came from.
    seconds : float or None
        Wall time of the parameters (worker) and of the build.
    """

    index: int
    name: str
    folder: str
    status: str = "pending"
    complete: bool = False
    stage: Optional[str] = None
    error: Optional[str] = None
    smiles: Optional[str] = None
    net_charge: Optional[int] = None
    ligand_atoms: Optional[int] = None
    atom_counts: Optional[dict] = None
    parameters: Optional[str] = None
    seconds: Dict[str, float] = field(default_factory=dict)


@dataclass
class SeriesResult:
    """What :func:`build_series` did; written as ``series.json`` in the series folder.

    Attributes
    ----------
    out : Path
        The series folder.
    protein : str or None
        The protein file.
    ligands : list of SeriesLigand
        In series order.
    jobs : int
        Worker processes used for the parameters.
    options : dict
        The build options (JSON-able form).
    """

    out: Path
    protein: Optional[str]
    ligands: List[SeriesLigand]
    jobs: int
    options: dict = field(default_factory=dict)

    @property
    def built(self) -> List[SeriesLigand]:
        return [entry for entry in self.ligands if entry.status == "built"]

    @property
    def failed(self) -> List[SeriesLigand]:
        return [entry for entry in self.ligands if entry.status == "failed"]

    def to_dict(self) -> dict:
        return {"protein": self.protein, "jobs": self.jobs, "options": self.options,
                "n_ligands": len(self.ligands), "n_built": len(self.built), "n_failed": len(self.failed),
                "ligands": [asdict(entry) for entry in self.ligands]}

    def write(self) -> Path:
        """Write ``series.json`` (atomically) into :attr:`out`."""
        return write_text_atomic(Path(self.out) / SERIES_FILE, json.dumps(self.to_dict(), indent=2) + "\n")


def load_series_result(out) -> dict:
    """The ``series.json`` of a series folder, as a dict."""
    return json.loads((Path(out) / SERIES_FILE).read_text())


def folder_name(name: str, taken: set) -> str:
    """A folder name for a ligand title: letters, digits, ``.``, ``_``, ``-`` (others become ``_``), unique."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "ligand"
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate.lower())
    return candidate


def _is_complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in BUILD_FILES)


def _parameters_in_worker(ligand: Ligand, ligand_ff: str, cache: bool, charge_method: str):
    """Worker process: the ligand's parameters, or the error's message (never raises)."""
    set_quiet(True)
    start = time.perf_counter()
    try:
        params = parametrize(ligand, ligand_ff, cache=cache, charge_method=charge_method)
    except HybridError as exc:
        return None, str(exc), time.perf_counter() - start
    except Exception as exc:  # a crash in one ligand must not stop the series
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start
    return params, None, time.perf_counter() - start


def _pool_context():
    # fork: the workers start at once with the modules already imported; they only run RDKit and
    # AmberTools subprocesses, never torch's thread pools.  Elsewhere (macOS, Windows) spawn.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _entries(ligands, resname: str):
    """(SeriesLigand without folder, Ligand or None) per ligand of a series file or a list of molecules."""
    out = []
    if isinstance(ligands, (str, os.PathLike)) and (Path(ligands).exists() or
                                                    Path(ligands).suffix.lower() in SUPPORTED_EXTENSIONS):
        path = Path(ligands)
        for record in read_ligand_records(path):
            try:
                ligand = ligand_from_record(record, path, resname)
                out.append((SeriesLigand(record.index, record.name, ""), ligand))
            except HybridError as exc:
                out.append((SeriesLigand(record.index, record.name, "", status="failed", stage="read",
                                         error=str(exc)), None))
        return out
    if isinstance(ligands, (str, os.PathLike, LigandRecord)):
        ligands = [ligands]
    for index, spec in enumerate(ligands):
        name = getattr(spec, "name", None) or str(spec)
        try:
            ligand = load_ligand(spec, resname=resname)
            out.append((SeriesLigand(index, ligand.name, ""), ligand))
        except HybridError as exc:
            out.append((SeriesLigand(index, name, "", status="failed", stage="read", error=str(exc)), None))
    return out


def build_series(protein, ligands, out, jobs: Optional[int] = None, overwrite: bool = False, resume: bool = False,
                 **build_options) -> SeriesResult:
    """Build every ligand of a series against one protein, each into its own folder.

    Parameters
    ----------
    protein : str, Path or None
        PDB/mmCIF file (prepared once, with the ``build_options`` that concern it), or None for
        ligands alone.
    ligands : str, Path or iterable
        A multi-molecule SDF/MOL2 file (one ligand per record, named by its title), or a list
        of ligands (files, SMILES, RDKit molecules, :class:`Ligand`).
    out : str or Path
        The series folder: ``series.json`` and one subfolder per ligand, named by its title
        (characters other than letters, digits, ``.``, ``_``, ``-`` become ``_``; repeated
        names get ``-2``, ``-3``).  A ligand's folder is complete (``system.xml``,
        ``topology.pdb``, ``state.xml``, ``build.json``, ``prep.json`` with a protein) or absent.
    jobs : int, optional
        Worker processes for the ligand parameters (default: the number of CPU cores; 1: in
        this process).
    overwrite : bool
        Allow a non-empty ``out`` (ligand folders built now replace old ones).
    resume : bool
        Keep the ligands ``series.json`` in ``out`` lists as built whose folders are complete,
        and build the others.
    build_options :
        As for :func:`~openmm_hybrid.mm.builder.build_system` (``solvent``, ``padding``,
        ``charge_method``, ``ligand_resname``, ``cofactors``, ``check_ligand``, ...), except
        ``ligand``, ``ligand_name``, ``ligand_index`` and ``ligand_template``.

    Returns
    -------
    SeriesResult
        Also written to ``out/series.json``: per ligand ``index``, ``name``, ``folder``,
        ``status`` (``built``/``failed``/``pending``), ``complete``, ``stage`` and ``error`` of
        a failure, ``smiles``, ``net_charge``, ``ligand_atoms``, ``atom_counts``, ``parameters``
        (``computed``/``cache``), ``seconds``; at the top ``protein``, ``jobs``, ``options``,
        ``n_ligands``, ``n_built``, ``n_failed``.

    Raises
    ------
    HybridError
        Before any ligand is built: an unusable ``out``, options a series cannot take, a
        protein that cannot be prepared.  Failures of single ligands are not raised: they are
        in the result (``failed``).
    """
    for key in ("ligand", "ligand_name", "ligand_index", "ligand_template"):
        if build_options.get(key) is not None:
            raise HybridError(f"a series builds every ligand it is given; {key} does not apply to build_series")
    out = Path(out)
    previous = {}
    if resume and (out / SERIES_FILE).is_file():
        previous = {(e["index"], e["name"]): e for e in load_series_result(out)["ligands"]
                    if e["status"] == "built" and _is_complete(out / e["folder"])}
    else:
        check_output_folder(out, overwrite=overwrite, what="series")
    out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    resname = build_options.get("ligand_resname", "LIG")
    options = {k: (v if isinstance(v, (str, int, float, bool, type(None), list, tuple)) else str(v))
               for k, v in build_options.items() if k != "check_ligand"}
    entries = _entries(ligands, resname)
    taken: set = set()
    for entry, _ in entries:
        entry.folder = folder_name(entry.name, taken)
    result = SeriesResult(out, None if protein is None else str(protein), [e for e, _ in entries], jobs, options)
    for entry, ligand in entries:
        if ligand is not None:
            entry.smiles, entry.net_charge, entry.ligand_atoms = ligand.canonical_smiles, ligand.net_charge, ligand.n_atoms
        done = previous.get((entry.index, entry.name))
        if done is not None:
            entry.status, entry.complete, entry.folder = "built", True, done["folder"]
            entry.atom_counts, entry.parameters = done.get("atom_counts"), done.get("parameters")
    result.write()
    n = len(entries)
    progress(f"series: {n} ligands from {ligands if isinstance(ligands, (str, os.PathLike)) else 'the list given'}"
             f"{'' if protein is None else f' against {protein}'}; {len(previous)} already built")

    todo = [(entry, ligand) for entry, ligand in entries if ligand is not None and entry.status == "pending"]
    check = build_options.get("check_ligand")
    for entry, ligand in todo:
        if check is not None:
            try:
                check(ligand)
            except HybridError as exc:
                _fail(entry, "check", exc)
                progress(f"ligand {entry.index + 1}/{n} {entry.name}: refused: {exc}")
    todo = [(e, lig) for e, lig in todo if e.status == "pending"]
    result.write()

    prepared = None
    if protein is not None and todo:
        prepared = prepare_build_protein(protein, **{k: v for k, v in build_options.items() if k != "check_ligand"})
    parameters = _parametrize_all(todo, jobs, n, build_options)
    result.write()

    for entry, ligand in todo:
        if entry.status != "pending":
            continue
        start = time.perf_counter()
        try:
            with output_folder(out / entry.folder, overwrite=overwrite or resume, what="ligand") as work:
                built = build_system(protein=prepared, ligand=ligand, ligand_parameters=parameters.get(entry.index),
                                     **{k: v for k, v in build_options.items() if k != "check_ligand"})
                built.save(work)
        except HybridError as exc:
            _fail(entry, "build", exc)
            progress(f"ligand {entry.index + 1}/{n} {entry.name}: build failed: {exc}")
        else:
            entry.status, entry.complete = "built", _is_complete(out / entry.folder)
            entry.atom_counts = built.info["atom_counts"]
            progress(f"ligand {entry.index + 1}/{n} {entry.name}: built in {out / entry.folder} "
                     f"({entry.atom_counts['total']} atoms)")
        entry.seconds["build"] = round(time.perf_counter() - start, 3)
        result.write()
    progress(f"series: {len(result.built)} of {n} ligands built, {len(result.failed)} failed; summary in "
             f"{out / SERIES_FILE}")
    return result


def _fail(entry: SeriesLigand, stage: str, exc: Exception) -> None:
    entry.status, entry.stage, entry.error, entry.complete = "failed", stage, str(exc), False


def _parametrize_all(todo, jobs: int, n: int, options: dict) -> dict:
    """Parameters of the ``todo`` ligands, computed in ``jobs`` worker processes: index -> LigandParameters."""
    ligand_ff, cache = options.get("ligand_ff", "gaff2"), options.get("ligand_cache", True)
    charge_method = options.get("charge_method", "bcc")
    results: dict = {}
    if not todo:
        return results
    workers = min(jobs, len(todo))
    progress(f"ligand parameters for {len(todo)} ligands in {workers} worker process(es)")

    def record(entry, outcome):
        params, error, seconds = outcome
        entry.seconds["parameters"] = round(seconds, 3)
        if error is not None:
            _fail(entry, "parameters", HybridError(error))
            progress(f"ligand {entry.index + 1}/{n} {entry.name}: parameters failed: {error.splitlines()[0]}")
            return
        entry.parameters = "cache" if params.from_cache else "computed"
        results[entry.index] = params
        progress(f"ligand {entry.index + 1}/{n} {entry.name}: parameters "
                 f"{'from the cache' if params.from_cache else f'computed in {seconds:.1f} s'}")

    if workers == 1:
        for entry, ligand in todo:
            quiet = set_quiet(True)
            try:
                outcome = _parameters_in_worker(ligand, ligand_ff, cache, charge_method)
            finally:
                set_quiet(quiet)
            record(entry, outcome)
        return results
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        futures = {pool.submit(_parameters_in_worker, ligand, ligand_ff, cache, charge_method): entry
                   for entry, ligand in todo}
        for future in as_completed(futures):
            record(futures[future], future.result())
    return results
