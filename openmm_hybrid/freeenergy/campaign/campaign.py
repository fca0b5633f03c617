"""A free-energy campaign over a ligand series, from the series file to ``campaign.json``.

:func:`run_campaign` (``openmm-hybrid fe campaign``):

1. locks the folder (:mod:`.lock`), resolves the settings (the seed of an earlier run is reused),
   reads the series and the value tables, and refuses a folder holding another campaign or a
   ligand that changed under its name (fingerprints);
2. makes the graph of units of every ligand that can run (:mod:`.graph`): a record that cannot be
   read, a charged molecule in a hydration campaign and a ligand that failed in an earlier run
   (unless ``retry_failed``) are reported with their reason instead;
3. runs it on Dask or serially (:mod:`.cluster`, :mod:`.driver`), with progress (:mod:`.progress`);
4. writes the series summaries, ``campaign.json``, ``campaign.csv`` and the plots (:mod:`.report`).

A stopped campaign (``stop_after_units``, Ctrl-C, SIGTERM, a crash) resumes when run again with
the same folder: finished units are not recomputed, and the numbers equal those of an
uninterrupted run with the same seed (bit for bit on a deterministic platform).
"""
import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..._files import FolderLock
from ..._util import progress
from ...errors import CampaignError, RunInterrupted
from ..checkpoint import Checkpoint
from ..endstate import prepare_settings
from ..hydration import alchemical_states
from ..settings import to_dict, write_settings
from .cluster import open_executor
from .driver import execute
from .graph import Unit, make_graph
from .progress import CampaignProgress
from .report import write_outputs
from .results import calculations_of, ligand_record, series_statistics
from .seeds import ligand_seed
from .series import SeriesEntry, phase_build_options, read_series, read_value_table
from .settings import CampaignSettings, result_settings, validate_campaign
from .store import CampaignStore

SETTINGS_FILE = "settings.yaml"


def run_campaign(ligands, out_dir, protein=None, settings: Optional[CampaignSettings] = None, mm_dg=None,
                 experimental=None, hydration: bool = False, client=None, scheduler: Optional[str] = None,
                 cluster: Optional[str] = None, cluster_config=None, workers: Optional[int] = None,
                 serial: bool = False, dashboard: bool = True, stop_after_units: Optional[int] = None,
                 retry_failed: bool = False) -> dict:
    """ML/MM corrections of a ligand series' binding free energies, or hydration free energies of
    many molecules, run as units of work on Dask.

    Parameters
    ----------
    ligands : str or Path
        Series file: multi-molecule SDF (names from the record titles) or SMILES file
        (``SMILES name`` per line).
    out_dir : str or Path
        Campaign folder (see :mod:`.store`); an unfinished campaign there resumes.
    protein : str or Path, optional
        Prepared protein (PDB/mmCIF) of a binding campaign.
    settings : CampaignSettings, optional
    mm_dg : str or Path, optional
        ``name,dG,dG_err`` CSV (kcal/mol) of MM binding free energies from any MM tool; the
        corrected ``dG(ML/MM) = dG(MM) + ddG_corr`` is reported for these ligands.
    experimental : str or Path, optional
        ``name,dG,dG_err`` CSV (kcal/mol) of experimental values: errors and MAE, RMSE,
        Kendall tau with bootstrap intervals for MM and ML/MM.
    hydration : bool
        Hydration free energies of the molecules (MM legs by MBAR, plus ML/MM corrections
        unless ``settings.ml`` is None) instead of binding corrections.
    client : distributed.Client, optional
        Run on this Dask client.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``).
    cluster : {"slurm", "pbs"}, optional
        Start workers as batch jobs (dask-jobqueue), configured by ``cluster_config`` (YAML).
    workers : int, optional
        Workers of the embedded local cluster (default: one per GPU, else one per core).
    serial : bool
        Run every unit in this process, without Dask.
    dashboard : bool
        Serve the Dask dashboard of a local cluster (its address is printed; needs bokeh).
    stop_after_units : int, optional
        Stop after this many units (raises :class:`RunInterrupted`; rerun to resume).
    retry_failed : bool
        Try again the ligands that failed in earlier runs (they are skipped otherwise).

    Returns
    -------
    dict
        The contents of ``campaign.json``: ``status`` (``complete``/``incomplete``),
        ``counts``, ``ligands`` (per ligand: ``status``, ``reason``, ``calculations``,
        ``correction``, ``mm``, ``ml_mm``, ``experimental``, errors), ``statistics``.

    Raises
    ------
    CampaignError
        Folder in use, unreadable input, another campaign in the folder, cluster problems.
    RunInterrupted
        Stopped on request; the finished units are kept.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, what="the campaign folder"):
        settings = _prepare(settings, out, hydration, protein, mm_dg)
        entries = read_series(ligands)
        mm = read_value_table(mm_dg, "MM binding free energies") if mm_dg is not None else {}
        exp = read_value_table(experimental, "experimental free energies") if experimental is not None else {}
        store = CampaignStore(out)
        if store.remove_temporary_files():
            progress("campaign: removed temporary files of units interrupted in an earlier run")
        Checkpoint(out / "checkpoint", _campaign_fingerprint(settings, hydration, protein))
        write_settings(settings, out / SETTINGS_FILE)
        reasons = _unrunnable(entries, store, hydration, retry_failed)
        runnable = [e for e in entries if e.name not in reasons]
        for entry in runnable:
            Checkpoint(store.ligand_dir(entry.name) / "checkpoint", _ligand_fingerprint(entry))
        alchemical = settings.alchemical
        graph = make_graph([e.name for e in runnable], {e.name: ligand_seed(settings.seed, e.name) for e in runnable},
                           settings, hydration,
                           len(alchemical_states(alchemical.electrostatics_lambdas, alchemical.sterics_lambdas)))
        options = phase_build_options(settings, hydration, None if protein is None else Path(protein).resolve())
        builds = {e.name: {"molblock": e.molblock, "options": options} for e in runnable}

        def arguments(unit: Unit):
            if unit.kind == "build":
                return None, builds[unit.ligand]
            return graph.calculation_of(unit), None

        done = {u.id for u in graph if store.is_done(u)}
        t0 = time.perf_counter()
        execution = {}
        interrupted = None
        with open_executor(out, serial, client, scheduler, cluster, cluster_config, workers, dashboard) as executor:
            meter = CampaignProgress(graph, store, done, executor.n_workers, settings.execution.progress_interval_s,
                                     failed=reasons)
            progress(f"campaign: {len(entries)} ligands, {len(graph)} units ({len(done)} done before)"
                     + (f", {len(reasons)} ligand(s) not run" if reasons else ""))
            execution.update(executor=executor.description, workers=executor.n_workers,
                             units_done_before=meter.snapshot()["units_done"])
            try:
                outcome = execute(graph, store, executor, arguments, meter, settings.execution.max_attempts,
                                  stop_after_units)
                execution.update(units_resubmitted=outcome["resubmitted"])
            except RunInterrupted as exc:
                interrupted = exc
        snapshot = meter.snapshot()
        execution.update(units_computed_this_run=meter.computed, wall_seconds_this_run=time.perf_counter() - t0,
                         units_done=snapshot["units_done"], units_total=snapshot["units_total"],
                         units_of_failed_ligands=len(graph) - snapshot["units_total"])
        _write_series_summaries(store, entries, options, meter.failed)
        summary = _summary(store, settings, entries, meter.failed, mm, exp, hydration, protein, ligands, execution)
        write_outputs(store, summary, settings.report.plots and interrupted is None,
                      settings.correction.min_overlap)
        if interrupted is not None:
            raise RunInterrupted(f"campaign stopped ({interrupted}); {execution['units_done']}/"
                                 f"{snapshot['units_total']} units are saved in '{out}': run the same command "
                                 f"again to resume")
        counts = summary["counts"]
        progress(f"campaign: {counts['ok']} of {len(entries)} ligands ok"
                 + (f", {counts['failed']} failed" if counts["failed"] else "")
                 + (f", {counts['other']} flagged (see status)" if counts["other"] else "")
                 + f"; results in {out / 'campaign.json'}")
        return summary


def _prepare(settings, out: Path, hydration: bool, protein, mm_dg) -> CampaignSettings:
    if hydration and protein is not None:
        raise CampaignError("a hydration campaign takes molecules only: leave out the protein")
    if not hydration and protein is None:
        raise CampaignError("a binding campaign needs the protein (--protein FILE); for hydration free energies "
                            "use --hydration")
    if protein is not None and not Path(protein).is_file():
        raise CampaignError(f"protein file '{protein}' does not exist")
    if hydration and mm_dg is not None:
        raise CampaignError("--mm-dg gives MM binding free energies; a hydration campaign computes its MM values")
    settings = copy.deepcopy(settings) if settings is not None else CampaignSettings()
    settings = validate_campaign(prepare_settings(settings, out, CampaignSettings))
    if settings.ml is None and not hydration:
        raise CampaignError("setting 'ml' is null: a binding campaign computes ML/MM corrections and needs a model")
    if settings.ml is not None:  # files by absolute path: workers may run in another folder
        if Path(settings.ml.model).is_file():
            settings.ml.model = str(Path(settings.ml.model).resolve())
        for key, value in (settings.ml.embedding_options or {}).items():
            if isinstance(value, str) and Path(value).is_file():
                settings.ml.embedding_options[key] = str(Path(value).resolve())
    if hydration and settings.simulation.temperature_K != settings.correction.simulation.temperature_K:
        raise CampaignError(f"the MM legs (simulation.temperature_K = {settings.simulation.temperature_K}) and the "
                            f"corrections (correction.simulation.temperature_K = "
                            f"{settings.correction.simulation.temperature_K}) must run at one temperature")
    return settings


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _campaign_fingerprint(settings: CampaignSettings, hydration: bool, protein) -> dict:
    model = None
    if settings.ml is not None:
        model = {"name": settings.ml.model}
        if Path(settings.ml.model).is_file():
            model["sha256"] = _sha256(settings.ml.model)
    return {"workflow": "hydration campaign" if hydration else "binding campaign",
            "settings": result_settings(settings), "model": model,
            "protein_sha256": None if protein is None else _sha256(protein)}


def _ligand_fingerprint(entry: SeriesEntry) -> dict:
    positions = np.ascontiguousarray(entry.ligand.mol.GetConformer().GetPositions(), dtype=float)
    return {"smiles": entry.ligand.canonical_smiles,
            "coordinates_sha256": hashlib.sha256(positions.tobytes()).hexdigest()}


def _unrunnable(entries: List[SeriesEntry], store: CampaignStore, hydration: bool,
                retry_failed: bool) -> Dict[str, str]:
    """Ligands that do not enter the graph, with the reason."""
    if retry_failed:
        store.forget_failures()
    earlier = store.failures()
    reasons = {}
    for entry in entries:
        if not entry.usable:
            reasons[entry.name] = f"input: {entry.error}"
        elif hydration and entry.ligand.net_charge != 0:
            reasons[entry.name] = (f"input: net charge {entry.ligand.net_charge:+d} e; absolute hydration free "
                                   f"energies of charged molecules need a co-alchemical counter-ion or finite-size "
                                   f"corrections, which are not implemented")
        elif entry.name in earlier:
            reasons[entry.name] = (f"{earlier[entry.name]['reason']} (failed in an earlier run; --retry-failed to try "
                                   f"again)")
    return reasons


def _write_series_summaries(store: CampaignStore, entries: List[SeriesEntry], options: dict,
                            failed: Dict[str, str]) -> None:
    """``build/PHASE/series.json``: each ligand's build status, atom count, net charge, folder, error."""
    for phase in options:
        ligands = []
        for entry in entries:
            item = {"name": entry.name, "record": entry.index + 1, "status": "pending", "folder": None,
                    "n_atoms": None, "net_charge": None if entry.ligand is None else entry.ligand.net_charge,
                    "error": None}
            marker = store.output_of(Unit(entry.name, "build"))
            if marker.is_file():
                item.update(json.loads(marker.read_text())[phase], status="ok")
            elif entry.name in failed:
                item.update(status="failed", error=failed[entry.name])
            ligands.append(item)
        folder = store.root / "build" / phase
        folder.mkdir(parents=True, exist_ok=True)
        store.write_json(f"build/{phase}/series.json", {"phase": phase, "ligands": ligands})


def _summary(store: CampaignStore, settings: CampaignSettings, entries: List[SeriesEntry], failed: Dict[str, str],
             mm: dict, exp: dict, hydration: bool, protein, series, execution: dict) -> dict:
    calcs = calculations_of(hydration, settings.ml is not None)
    temperature = settings.correction.simulation.temperature_K
    records = {}
    for entry in entries:
        info = {"record": entry.index + 1}
        if entry.usable:
            info.update(smiles=entry.ligand.canonical_smiles, net_charge=entry.ligand.net_charge,
                        n_atoms=entry.ligand.n_atoms)
        records[entry.name] = ligand_record(store, entry.name, calcs, hydration, temperature, info,
                                            failed.get(entry.name), mm.get(entry.name), exp.get(entry.name))
    report = settings.report
    counts = {"ok": 0, "failed": 0, "pending": 0, "other": 0}
    for record in records.values():
        counts[record["status"] if record["status"] in counts else "other"] += 1
    names = set(records)
    return {"workflow": "hydration" if hydration else "binding",
            "status": "incomplete" if counts["pending"] else "complete",
            "seed": settings.seed, "series": str(Path(series).resolve()),
            "protein": None if protein is None else str(Path(protein).resolve()),
            "calculations": calcs, "counts": counts, "ligands": records,
            "statistics": series_statistics(records, report.bootstrap_samples, report.confidence, settings.seed),
            "unmatched_table_names": sorted((set(mm) | set(exp)) - names),
            "execution": execution, "settings": to_dict(settings)}
