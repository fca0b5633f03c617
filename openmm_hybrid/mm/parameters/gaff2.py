"""GAFF2 parameters with AM1-BCC (or other antechamber) charges, through AmberTools.

:func:`parametrize_gaff2` runs ``antechamber`` (atom typing + charges from ``sqm``), ``parmchk2``
(missing GAFF2 parameters) and ``tleap`` (prmtop) in a temporary directory, loads the prmtop with
OpenMM and extracts the parameters (:mod:`.extraction`); results go to the disk cache (:mod:`.cache`).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import List, Optional, Tuple, Union

import openmm.app as app

from ..._util import progress
from ...errors import ParameterizationError
from ..ligand import Ligand
from .ambertools import (SQM_TIMEOUT_VARIABLE, describe_expected_time, failure_message, run_tool, sqm_timeout,
                         work_folder)
from .cache import load_cached, store_cache
from .extraction import parameters_from_system
from .record import LigandParameters

#: Charge methods accepted by :func:`parametrize_gaff2` (antechamber ``-c`` values).
GAFF2_CHARGE_METHODS = ("bcc", "abcg2", "gas")
#: What each method costs (benchmarks/results/bench_charge_methods.md), for help texts.
CHARGE_METHOD_COSTS = {
    "bcc": "AM1-BCC (default): sqm AM1 calculation, 0.6 s for p-xylene (18 atoms), 19 s for ibuprofen (33 atoms), "
           "minutes for 60+ atoms",
    "abcg2": "ABCG2: sqm AM1 charges with newer bond-charge corrections, about half of AM1-BCC's time",
    "gas": "Gasteiger: no quantum calculation, under 0.3 s at any size; lower quality, for quick looks",
}


def _read_mol2_atoms(path: Path) -> List[Tuple[str, str, float]]:
    """(atom name, atom type, charge [e]) per atom of a Tripos MOL2 file written by antechamber."""
    atoms, section = [], None
    for line in path.read_text().splitlines():
        if line.startswith("@<TRIPOS>"):
            section = line.strip()
            continue
        if section == "@<TRIPOS>ATOM" and line.strip():
            fields = line.split()
            atoms.append((fields[1], fields[5], float(fields[8])))
    return atoms


def _gaff2_from_scratch(ligand: Ligand, charge_method: str, keep_files: Optional[Path],
                        timeout: Optional[float]) -> LigandParameters:

    label = f"'{ligand.name}'"
    with work_folder() as work:
        ligand.write_sdf(work / "ligand.sdf")
        what = {"bcc": "AM1-BCC", "abcg2": "ABCG2", "gas": "Gasteiger"}[charge_method]
        limit = sqm_timeout(timeout)
        expected = describe_expected_time(ligand.n_atoms) if charge_method != "gas" else "a few seconds"
        progress(f"parametrising ligand {label} with GAFF2 + {what} charges (antechamber/sqm, "
                 f"{ligand.n_atoms} atoms, net charge {ligand.net_charge:+d}); expected {expected} "
                 f"(stopped after {limit:g} s)")
        advice = (f"a molecule of {ligand.n_atoms} atoms is expected to take {expected} on one core (more on a "
                  f"busy machine); allow more time with {SQM_TIMEOUT_VARIABLE}=SECONDS (Python: timeout=...), "
                  f"or use faster charges (charge_method='gas', Gasteiger)")
        t0 = time.perf_counter()
        out = run_tool(["antechamber", "-fi", "sdf", "-i", "ligand.sdf", "-fo", "mol2", "-o", "ligand.mol2",
                         "-c", charge_method, "-nc", str(ligand.net_charge), "-at", "gaff2", "-rn", "LIG",
                         "-s", "2", "-pf", "y"],
                        work, f"antechamber ({what} charges)", label, extra_logs=("sqm.out",), timeout=limit,
                        timeout_advice=advice)
        if not (work / "ligand.mol2").exists():
            raise ParameterizationError(failure_message(
                f"antechamber ({what} charges)", label, None, out, work, ("sqm.out",)))
        progress(f"{what} charges for ligand {label} done in {time.perf_counter() - t0:.1f} s")

        mol2_atoms = _read_mol2_atoms(work / "ligand.mol2")
        if len(mol2_atoms) != ligand.n_atoms:
            raise ParameterizationError(
                f"antechamber wrote {len(mol2_atoms)} atoms for ligand {label}, which has {ligand.n_atoms}")
        atom_types = [t for _, t, _ in mol2_atoms]
        mol2_charges = [q for _, _, q in mol2_atoms]

        out = run_tool(["parmchk2", "-i", "ligand.mol2", "-f", "mol2", "-o", "ligand.frcmod", "-s", "gaff2"],
                        work, "parmchk2", label, timeout=limit)
        frcmod = (work / "ligand.frcmod").read_text() if (work / "ligand.frcmod").exists() else ""
        if "ATTN" in frcmod:
            progress(f"warning: parmchk2 could not find some GAFF2 parameters for ligand {label} "
                     "(marked 'ATTN, need revision'); they are set to zero")

        (work / "leap.in").write_text(
            "source leaprc.gaff2\n"
            "loadamberparams ligand.frcmod\n"
            "LIG = loadmol2 ligand.mol2\n"
            "saveamberparm LIG ligand.prmtop ligand.inpcrd\n"
            "quit\n")
        out = run_tool(["tleap", "-f", "leap.in"], work, "tleap", label, extra_logs=("leap.log",),
                        timeout=limit)
        prmtop_path = work / "ligand.prmtop"
        if not prmtop_path.exists() or prmtop_path.stat().st_size == 0:
            raise ParameterizationError(failure_message("tleap", label, None, out, work, ("leap.log",)))

        if keep_files is not None:
            keep_files = Path(keep_files)
            keep_files.mkdir(parents=True, exist_ok=True)
            for p in work.iterdir():
                if p.is_file():
                    shutil.copy2(p, keep_files / p.name)

        prmtop = app.AmberPrmtopFile(str(prmtop_path))
        prm_elements = [a.element.symbol if a.element is not None else "?" for a in prmtop.topology.atoms()]
        if prm_elements != ligand.elements:
            raise ParameterizationError(
                f"AmberTools changed the atom order of ligand {label} (elements differ: "
                f"{prm_elements[:10]} vs {ligand.elements[:10]})")
        system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False,
                                     removeCMMotion=False)
    return parameters_from_system(system, ligand.mol, ligand.net_charge, label, atom_types,
                                   "gaff2", charge_method, ligand.identity_key, charges=mol2_charges)


def parametrize_gaff2(ligand: Ligand, charge_method: str = "bcc", cache: bool = True,
                      keep_files: Optional[Union[str, os.PathLike]] = None,
                      timeout: Optional[float] = None) -> LigandParameters:
    """GAFF2 parameters with AM1-BCC (or other antechamber) charges, cached on disk.

    Parameters
    ----------
    ligand : Ligand
        The molecule (explicit hydrogens, 3D conformer; the conformer is the
        starting geometry of the AM1 optimisation inside sqm).
    charge_method : {"bcc", "abcg2", "gas"}, optional
        antechamber charge method: AM1-BCC (default), ABCG2, or Gasteiger.
    cache : bool, optional
        Read and write the disk cache ``cache_dir("ligands")`` (default True).
    keep_files : path, optional
        Copy the AmberTools working files (``ligand.mol2``, ``ligand.frcmod``,
        ``ligand.prmtop``, ``ligand.inpcrd``, ``sqm.out``, ``leap.log``) to this
        directory.  Only when AmberTools actually runs (not on a cache hit).
    timeout : float, optional
        Limit for each AmberTools program, in seconds (default: ``$OPENMM_HYBRID_SQM_TIMEOUT``,
        else one hour).  A progress line says how long the molecule is expected to take.

    Returns
    -------
    LigandParameters
        Parameters in the atom order of ``ligand``; ``from_cache`` tells
        whether they came from the cache.

    Raises
    ------
    ParameterizationError
        AmberTools missing or failing (the message includes the tail of the
        antechamber output and ``sqm.out``/``leap.log``), atom order changed,
        charges not summing to the net charge (> 0.01 e off), or terms that
        cannot be expressed as an OpenMM template.
    """
    if charge_method not in GAFF2_CHARGE_METHODS:
        raise ParameterizationError(
            f"unknown charge method {charge_method!r} for GAFF2: use one of {', '.join(GAFF2_CHARGE_METHODS)}")
    if cache:
        hit = load_cached(ligand, "gaff2", charge_method)
        if hit is not None:
            progress(f"using cached parameters for ligand {ligand.name!r} (GAFF2, {charge_method} charges)")
            return hit
    params = _gaff2_from_scratch(ligand, charge_method, Path(keep_files) if keep_files else None, timeout)
    if cache:
        store_cache(ligand, params)
    return params


