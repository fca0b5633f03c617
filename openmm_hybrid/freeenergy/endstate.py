"""MM -> ML/MM end-state corrections: the free energy of ``lambda_interpolate`` 0 -> 1.

    dF = F(ML/MM) - F(MM) = -kT ln < exp(-(U_ML/MM - U_MM) / kT) >_MM

computed by two-way nonequilibrium switching with BAR (``method="neq"``, as in Rufa et al.
2020) or by MBAR over lambda windows (``method="mbar"``).  The workflow needs only a System
with the global parameter ``lambda_interpolate`` (0 = MM, 1 = ML/MM), as made by
``create_hybrid_system(..., interpolate=True)`` / ``openmm-hybrid embed --interpolate`` for
any embedding that honours it; the embedding itself is not looked at.

Note that ``dF`` includes the difference of the two potentials' energy zeros (ANI-2x's
atomic reference energies: about -1e5 kT for a small molecule), which cancels in a
thermodynamic cycle (hydration: solvent minus vacuum; binding: complex minus solvent).
"""
import copy
import hashlib
import time
from pathlib import Path
from typing import Optional

import numpy as np
import openmm
from openmm import unit

from .._util import openmm_errors, progress
from ..errors import FreeEnergyError, InsufficientOverlapError
from ..embeddings.interpolation import INTERPOLATION_PARAMETER
from ..forces.fingerprint import system_fingerprint
from ..mm.system_files import load_build
from . import plots
from .checkpoint import Checkpoint, SegmentBudget, run_folder, segment_seed
from .estimators import neq_analysis
from .outcome import analyse_windows, record_estimate
from .protocols import run_switching, run_windows
from .sampler import ChainState, StateSampler, select_platform, system_global_parameters
from .settings import EndstateSettings, resolve_seed, to_dict, validate, write_settings

SETTINGS = "settings.yaml"


def check_interpolating_system(system: openmm.System, where: str = "the System") -> None:
    """Refuse a System without the ``lambda_interpolate`` global parameter."""
    if INTERPOLATION_PARAMETER not in system_global_parameters(system):
        raise FreeEnergyError(
            f"{where} has no global parameter '{INTERPOLATION_PARAMETER}', so its MM and ML/MM end states "
            f"cannot be connected: embed it with `openmm-hybrid embed --interpolate ...` (Python: "
            f"create_hybrid_system(..., interpolate=True))")


def check_region_charge(metadata: Optional[dict]) -> None:
    """Refuse a charged ML region for a model that is for neutral molecules (from ``embed.json``)."""
    if not metadata:
        return
    charge = metadata.get("region_net_charge")
    if charge and abs(charge) > 1e-3 and not metadata.get("model_supports_charge", False):
        raise FreeEnergyError(
            f"the ML region has net charge {charge:+g} e, but model '{metadata.get('model')}' is for neutral "
            f"molecules only: its ML/MM end state (and the correction) would be meaningless")


def positions_nm(positions) -> np.ndarray:
    """(N, 3) float64 array in nm from a Quantity or plain numbers (nm)."""
    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    return np.array([[float(c) for c in p] for p in positions], dtype=float)


def box_nm(system: openmm.System, box_vectors=None) -> Optional[np.ndarray]:
    if not system.usesPeriodicBoundaryConditions():
        return None
    if box_vectors is None:
        box_vectors = system.getDefaultPeriodicBoxVectors()
    return positions_nm(box_vectors)


def input_fingerprint(system: openmm.System, positions: np.ndarray, box: Optional[np.ndarray]) -> dict:
    """What identifies the input of a run: the System (every force's parameters, ML modules by
    content: :func:`~openmm_hybrid.forces.fingerprint.system_fingerprint`) and the starting
    coordinates and box."""
    digest = hashlib.sha256(np.ascontiguousarray(positions).tobytes())
    if box is not None:
        digest.update(np.ascontiguousarray(box).tobytes())
    return {"system": system_fingerprint(system), "coordinates_sha256": digest.hexdigest()}


def platform_fingerprint(simulation) -> dict:
    """The platform a run's settings select (``platform: null`` resolved) and its properties."""
    platform, properties = select_platform(simulation.platform, simulation.deterministic)
    return {"name": platform.getName(), "properties": dict(properties)}


def prepare_settings(settings, out_dir, cls=EndstateSettings):
    """Copy, validate and give a seed to ``settings``; reuse the seed recorded in ``out_dir``
    when the caller gave none (a rerun of the same command then resumes)."""
    settings = copy.deepcopy(settings) if settings is not None else cls()
    stored = Path(out_dir) / SETTINGS
    if settings.seed is None and stored.is_file():
        import yaml
        settings.seed = (yaml.safe_load(stored.read_text()) or {}).get("seed")
    validate(settings)
    return resolve_seed(settings)


def run_endstate(system: openmm.System, positions, out_dir, settings: Optional[EndstateSettings] = None,
                 box_vectors=None, metadata: Optional[dict] = None, budget: Optional[SegmentBudget] = None,
                 label: str = "end-state correction", overwrite: bool = False, inputs=()) -> dict:
    """Free energy of switching ``lambda_interpolate`` from 0 (MM) to 1 (ML/MM).

    Parameters
    ----------
    system : openmm.System
        A System with the global parameter ``lambda_interpolate``.
    positions : Quantity or array (N, 3)
        Starting configuration (nm).
    out_dir : str or Path
        Output folder: ``results.json``, ``settings.yaml``, plots and ``checkpoint/``.  If it
        holds an unfinished run with the same input, settings and platform, that run resumes;
        a run of anything else is refused naming what differs.  The folder is locked while
        the run lasts (a second process is refused).
    settings : EndstateSettings, optional
    box_vectors : Quantity or array (3, 3), optional
        Periodic box (nm) of the starting configuration.
    metadata : dict, optional
        ``embed.json`` contents, recorded in the results (and checked for a charged region).
    budget : SegmentBudget, optional
        Stop (resumably) after a number of segments.
    label : str
        How progress messages name the run.
    overwrite : bool
        Empty ``out_dir`` first and start afresh (otherwise a non-empty folder that holds no
        free-energy run is refused).
    inputs : sequence of paths
        Input folders, which ``out_dir`` may not be or contain.

    Returns
    -------
    dict
        The contents of ``results.json``; ``estimate`` holds F(ML/MM) - F(MM) in kT,
        kcal/mol and kJ/mol with its uncertainty, ``status`` is ``ok`` or
        ``insufficient_sampling`` (:mod:`.outcome`).

    Raises
    ------
    FreeEnergyError
        No ``lambda_interpolate``, charged region with a neutral-only model, bad settings.
    CheckpointError
        The folder holds another run's checkpoint, or a damaged one.
    SimulationError
        A blow-up, or a force (an ML model) raising an error during the run.
    InsufficientOverlapError
        Forward/reverse works or neighbouring windows barely overlap (results are written first).
    """
    check_interpolating_system(system)
    check_region_charge(metadata)
    with run_folder(out_dir, overwrite, inputs, what="end-state correction") as out, openmm_errors(f"in the {label}"):
        return _run_endstate(system, positions, out, settings, box_vectors, metadata, budget, label)


def _run_endstate(system, positions, out: Path, settings, box_vectors, metadata, budget, label) -> dict:
    settings = prepare_settings(settings, out)
    positions = positions_nm(positions)
    if positions.shape != (system.getNumParticles(), 3):
        raise FreeEnergyError(f"{len(positions)} positions for a System of {system.getNumParticles()} particles")
    box = box_nm(system, box_vectors)
    sim = settings.simulation
    fingerprint = {"workflow": "endstate", "settings": to_dict(settings), "platform": platform_fingerprint(sim),
                   "input": input_fingerprint(system, positions, box)}
    checkpoint = Checkpoint(out / "checkpoint", fingerprint, budget)
    write_settings(settings, out / SETTINGS)
    if checkpoint.resumed:
        progress(f"{label}: resuming the run in {out}")
    t0 = time.perf_counter()
    sampler = StateSampler(system, [INTERPOLATION_PARAMETER], sim)
    start = ChainState(positions, None, box)
    # decide once, at the input configuration, how energies at other lambdas are evaluated
    sampler.start_segment(start, segment_seed(settings.seed, "linearity", 0), {INTERPOLATION_PARAMETER: 0.0})
    sampler.check_linearity(INTERPOLATION_PARAMETER)
    progress(f"{label}: {settings.method.upper()} on {sampler.platform.getName()}, "
             f"{sampler.description['energy_evaluation']}")
    minimize = sim.minimize_iterations
    results = {
        "workflow": "endstate",
        "quantity": "F(ML/MM) - F(MM), lambda_interpolate 0 -> 1",
        "method": settings.method,
        "seed": settings.seed,
        "settings": to_dict(settings),
        "sampler": sampler.description,
        "input": {k: v for k, v in (metadata or {}).items()
                  if k in ("ml_atoms", "model", "embedding", "precision", "region", "region_net_charge", "source",
                           "solvent", "atom_counts", "ligand")},
    }
    error = None
    if settings.method == "neq":
        w_f, w_r = run_switching(sampler, INTERPOLATION_PARAMETER, settings.neq, checkpoint, settings.seed, start,
                                 minimize, label=label)
        try:
            analysis = neq_analysis(w_f, w_r, sim.temperature_K, settings.min_overlap)
        except InsufficientOverlapError as exc:
            analysis, error = exc.analysis, exc
        results["works_kT"] = {"forward": w_f.tolist(), "reverse": w_r.tolist()}
        plots.plot_work_distributions(w_f, w_r, analysis["estimate"].value_kT, out / "work_distributions.png",
                                      f"{label}: nonequilibrium work")
    else:
        lambdas = settings.mbar.lambdas
        states = [{INTERPOLATION_PARAMETER: float(x)} for x in lambdas]
        names = [f"lambda={x:g}" for x in lambdas]
        windows = run_windows(sampler, states, settings.mbar, checkpoint, settings.seed, start, minimize,
                              label=f"{label}: MBAR windows", names=names)
        analysis, error = analyse_windows(windows, sim.temperature_K, settings.mbar.decorrelate,
                                          settings.min_overlap, names, out, label)
        results["lambdas"] = list(lambdas)
    results["resumed"] = checkpoint.resumed
    return record_estimate(results, analysis, error, out, f"{label}: dF(MM -> ML/MM)",
                           settings.min_effective_samples, sampler.step_count, t0)


def run_endstate_directory(input_dir, out_dir, settings: Optional[EndstateSettings] = None,
                           budget: Optional[SegmentBudget] = None, label: str = "end-state correction",
                           overwrite: bool = False) -> dict:
    """:func:`run_endstate` on a folder written by ``openmm-hybrid embed --interpolate`` (which
    ``out_dir`` may not be)."""
    built = load_build(input_dir)
    check_interpolating_system(built.system, f"the system in '{input_dir}'")
    box = built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions() else None
    metadata = dict(built.info)
    metadata.setdefault("source", str(Path(input_dir).resolve()))
    return run_endstate(built.system, built.positions, out_dir, settings, box, metadata, budget, label,
                        overwrite=overwrite, inputs=[input_dir])
