"""Absolute hydration free energies, MM and ML/MM.

Thermodynamic cycle (each leg turns the ligand's interactions off, from coupled to decoupled):

    dG_hyd(MM)    = dF_vacuum(coupled -> decoupled) - dF_solvent(coupled -> decoupled)
    dG_hyd(ML/MM) = dG_hyd(MM) + dF_corr(solvent) - dF_corr(vacuum)

The MM legs use openmmtools' ``AbsoluteAlchemicalFactory``: ``lambda_electrostatics`` goes
from 1 to 0 with the ligand's charges (its intramolecular electrostatics too, "annihilated",
exact PME treatment), then ``lambda_sterics`` from 1 to 0 with a soft-core Lennard-Jones
potential for the ligand-environment pairs ("decoupled": intramolecular Lennard-Jones stays).
The vacuum leg applies the same alchemical changes to the ligand alone, so the two decoupled
end states differ only by the (ligand-free) water box, whose free energy cancels.  Both legs
are analysed with MBAR.  The end-state corrections (``lambda_interpolate`` 0 -> 1, see
:mod:`.endstate`) turn the ligand's MM intramolecular energy into the ML potential in water
and in vacuum.

Charged ligands are refused: a charged molecule's absolute hydration free energy needs a
co-alchemical counter-ion or finite-size corrections, which this workflow does not have.
No barostat: the solvent leg runs at constant volume in the built box.
"""
import time
from pathlib import Path
from typing import Optional

from .._util import openmm_errors, progress
from ..errors import FreeEnergyError
from ..hybrid import create_hybrid_system
from ..mm.builder import build_system
from ..mm.ligand import load_ligand
from ..mm.system_files import load_build
from ..models import load_model
from .checkpoint import Checkpoint, SegmentBudget, derived_seed, run_folder
from .endstate import (SETTINGS, box_nm, input_fingerprint, platform_fingerprint, positions_nm, prepare_settings,
                       run_endstate)
from .estimators import FreeEnergy
from .outcome import RESULTS, analyse_windows, combined_status, record_estimate, write_json
from .protocols import run_windows
from .sampler import ChainState, StateSampler
from .settings import EndstateSettings, HydrationSettings, to_dict, write_settings

ELECTROSTATICS = "lambda_electrostatics"
STERICS = "lambda_sterics"
PHASES = ("solvent", "vacuum")


def alchemical_states(electrostatics, sterics):
    """States of a decoupling leg: charges off first (sterics on), then Lennard-Jones off."""
    states = [{ELECTROSTATICS: float(e), STERICS: 1.0} for e in electrostatics]
    states += [{ELECTROSTATICS: 0.0, STERICS: float(s)} for s in sterics[1:]]
    return states


def state_label(state) -> str:
    return f"elec={state[ELECTROSTATICS]:g},vdw={state[STERICS]:g}"


def create_alchemical_system(system, atoms, softcore_alpha: float = 0.5):
    """openmmtools' alchemically modified copy of ``system`` for the ligand ``atoms``.

    Electrostatics annihilated (exact PME treatment), Lennard-Jones decoupled with soft core.
    """
    from openmmtools import alchemy
    import logging
    logging.getLogger("openmmtools").setLevel(logging.ERROR)
    factory = alchemy.AbsoluteAlchemicalFactory(alchemical_pme_treatment="exact")
    region = alchemy.AlchemicalRegion(alchemical_atoms=list(atoms), annihilate_electrostatics=True,
                                      annihilate_sterics=False, softcore_alpha=softcore_alpha)
    return factory.create_alchemical_system(system, region)


def _build(settings: HydrationSettings, ligand, phase: str, directory: Path):
    """Build (once) and read back the ligand in water or in vacuum; reading back makes an
    interrupted and an uninterrupted run start from identical coordinates."""
    if not (directory / "build.json").is_file():
        b = settings.build
        kwargs = dict(ligand=ligand, solvent="explicit" if phase == "solvent" else "vacuum", ligand_ff=b.ligand_ff,
                      hydrogen_mass=b.hydrogen_mass_amu)
        if phase == "solvent":
            kwargs.update(padding=b.padding_nm, nonbonded_cutoff=b.nonbonded_cutoff_nm, water_model=b.water_model,
                          box_shape=b.box_shape, ionic_strength=0.0)
        progress(f"hydration: building the ligand in {phase}")
        build_system(**kwargs).save(directory)
    return load_build(directory)


def _ligand_atoms(topology, resname: str = "LIG"):
    return [a.index for a in topology.atoms() if a.residue.name == resname]


def _mm_leg(phase, built, atoms, settings: HydrationSettings, out: Path, budget) -> dict:
    """One MBAR decoupling leg; returns its results (``estimate``: F(decoupled) - F(coupled))."""
    leg_dir = out / f"mm-{phase}"
    alchemical = settings.alchemical
    sampling = alchemical.solvent if phase == "solvent" else alchemical.vacuum
    states = alchemical_states(alchemical.electrostatics_lambdas, alchemical.sterics_lambdas)
    names = [state_label(s) for s in states]
    seed = derived_seed(settings.seed, f"mm-{phase}")
    positions = positions_nm(built.positions)
    box = box_nm(built.system, built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions()
                 else None)
    fingerprint = {"workflow": f"hydration MM {phase} leg", "seed": seed, "simulation": to_dict(settings.simulation),
                   "alchemical": to_dict(alchemical), "platform": platform_fingerprint(settings.simulation),
                   "input": input_fingerprint(built.system, positions, box)}
    checkpoint = Checkpoint(leg_dir / "checkpoint", fingerprint, budget)
    system = create_alchemical_system(built.system, atoms, alchemical.softcore_alpha)
    sampler = StateSampler(system, [ELECTROSTATICS, STERICS], settings.simulation)
    t0 = time.perf_counter()
    label = f"hydration MM {phase} leg"
    windows = run_windows(sampler, states, sampling, checkpoint, seed, ChainState(positions, None, box),
                          settings.simulation.minimize_iterations, label=label, names=names)
    results = {"workflow": label, "quantity": "F(decoupled) - F(coupled), electrostatics then sterics",
               "method": "mbar", "seed": seed, "states": states, "sampler": sampler.description}
    analysis, error = analyse_windows(windows, settings.simulation.temperature_K, sampling.decorrelate,
                                      settings.correction.min_overlap, names, leg_dir, f"MM {phase} leg")
    return record_estimate(results, analysis, error, leg_dir, f"{label}: dF(coupled -> decoupled)",
                           settings.correction.min_effective_samples, sampler.step_count, t0)


def run_hydration(ligand, out_dir, settings: Optional[HydrationSettings] = None,
                  budget: Optional[SegmentBudget] = None, overwrite: bool = False) -> dict:
    """Absolute hydration free energy of a neutral ligand, MM and (optionally) ML/MM.

    Parameters
    ----------
    ligand : str, Path, RDKit Mol or Ligand
        SDF/MOL2 file or SMILES (see :func:`openmm_hybrid.load_ligand`).
    out_dir : str or Path
        Output folder: ``results.json``, ``settings.yaml``, ``build/``, ``mm-solvent/``,
        ``mm-vacuum/``, ``correction-solvent/``, ``correction-vacuum/`` (each with its
        results, plots and checkpoint).  An unfinished run there resumes; the folder is locked
        while the run lasts.
    settings : HydrationSettings, optional
    budget : SegmentBudget, optional
        Stop (resumably) after a number of segments.
    overwrite : bool
        Empty ``out_dir`` first and start afresh.

    Returns
    -------
    dict
        The contents of ``results.json``: ``estimate`` = ``{"mm": ..., "ml_mm": ...}``
        (dG_hyd in kT, kcal/mol, kJ/mol with uncertainties), legs and corrections, and
        ``status``, the worst of theirs (:mod:`.outcome`).
    """
    inputs = [ligand] if isinstance(ligand, (str, Path)) and Path(ligand).exists() else []
    with run_folder(out_dir, overwrite, inputs, what="hydration") as out, openmm_errors("in the hydration workflow"):
        return _run_hydration(ligand, out, settings, budget)


def _run_hydration(ligand, out: Path, settings, budget) -> dict:
    settings = prepare_settings(settings, out, HydrationSettings)
    lig = load_ligand(ligand)
    if lig.net_charge != 0:
        raise FreeEnergyError(
            f"ligand {lig.name or lig.canonical_smiles} has net charge {lig.net_charge:+d} e: absolute hydration free "
            f"energies of charged molecules need a co-alchemical counter-ion or finite-size corrections, which this "
            f"workflow does not implement (and ANI-2x is for neutral molecules only); use a neutral form")
    # one fingerprint for the whole run (the legs also check their own input)
    Checkpoint(out / "checkpoint", {"workflow": "hydration", "settings": to_dict(settings),
                                    "ligand": lig.canonical_smiles}, budget)
    write_settings(settings, out / SETTINGS)
    t0 = time.perf_counter()
    builds = {phase: _build(settings, lig, phase, out / "build" / phase) for phase in PHASES}
    atoms = {phase: _ligand_atoms(builds[phase].topology) for phase in PHASES}
    hybrids = {}
    if settings.ml is not None:
        # embed first: an unsupported element or model fails here, before hours of MM sampling
        options = {} if settings.ml.model_index is None else {"model_index": settings.ml.model_index}
        model = load_model(settings.ml.model, precision=settings.ml.precision, **options)  # once for both phases
        for phase in PHASES:
            built = builds[phase]
            hybrids[phase] = create_hybrid_system(built.topology, built.system, atoms[phase], model=model,
                                                  embedding=settings.ml.embedding, interpolate=True,
                                                  positions=built.positions,
                                                  **(settings.ml.embedding_options or {}))
    legs = {phase: _mm_leg(phase, builds[phase], atoms[phase], settings, out, budget) for phase in PHASES}
    leg_dF = {phase: FreeEnergy.from_dict(legs[phase]["estimate"]) for phase in PHASES}
    mm = leg_dF["vacuum"] - leg_dF["solvent"]
    results = {"workflow": "hydration", "ligand": {"name": lig.name, "smiles": lig.canonical_smiles,
                                                  "n_atoms": lig.n_atoms},
               "quantity": "dG_hyd = F(in water) - F(in vacuum)", "seed": settings.seed,
               "settings": to_dict(settings),
               "cycle": "dG_hyd(MM) = dF_vacuum - dF_solvent (coupled -> decoupled); "
                        "dG_hyd(ML/MM) = dG_hyd(MM) + dF_corr(solvent) - dF_corr(vacuum)",
               "legs": {phase: {"estimate": legs[phase]["estimate"], "status": legs[phase]["status"],
                                "min_neighbour_overlap": legs[phase]["details"]["min_neighbour_overlap"],
                                "n_uncorrelated": legs[phase]["details"]["n_uncorrelated"],
                                "effective_samples": legs[phase]["details"]["effective_samples"]}
                        for phase in PHASES},
               "estimate": {"mm": mm.to_dict()}}
    if settings.ml is not None:
        corrections = {}
        for phase in PHASES:
            built = builds[phase]
            correction_settings = EndstateSettings(**{k: getattr(settings.correction, k)
                                                      for k in to_dict(settings.correction)},
                                                   seed=derived_seed(settings.seed, f"correction-{phase}"))
            metadata = dict(built.info)
            metadata.update(hybrids[phase].metadata())
            box = built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions() else None
            r = run_endstate(hybrids[phase].system, built.positions, out / f"correction-{phase}", correction_settings,
                             box, metadata, budget, label=f"ML/MM correction in {phase}")
            corrections[phase] = FreeEnergy.from_dict(r["estimate"])
            results.setdefault("corrections", {})[phase] = {
                "estimate": r["estimate"], "method": r["method"], "status": r["status"],
                "overlap": r["details"].get("overlap", r["details"].get("min_neighbour_overlap")),
                "effective_samples": r["details"]["effective_samples"]}
        ml_mm = mm + corrections["solvent"] - corrections["vacuum"]
        results["estimate"]["ml_mm"] = ml_mm.to_dict()
        results["ml"] = to_dict(settings.ml)
    parts = list(results["legs"].values()) + list(results.get("corrections", {}).values())
    results["status"] = combined_status(part["status"] for part in parts)
    results["wall_seconds_this_process"] = time.perf_counter() - t0
    write_json(out / RESULTS, results)
    summary = f"dG_hyd(MM) = {mm}"
    if "ml_mm" in results["estimate"]:
        summary += f", dG_hyd(ML/MM) = {FreeEnergy.from_dict(results['estimate']['ml_mm'])}"
    progress(f"hydration of {lig.name or lig.canonical_smiles}: {summary} (status {results['status']}); results in "
             f"{out / RESULTS}")
    return results
