"""The units of work: pure functions of (inputs on disk, settings, derived seed).

:func:`run_unit` runs one unit in whatever process it is given (a Dask worker, or the driver in
a serial run): it reads what its dependencies wrote, computes, and writes its own result into
the campaign folder atomically (:mod:`.store`).  Each sampling unit is one segment of the
protocols in :mod:`openmm_hybrid.freeenergy.protocols` (:func:`run_segment`,
:func:`run_switch_segment`), started from a saved state after ``Context.reinitialize()`` with the
seed of its identity, so where and when it runs does not change its result (bit for bit on a
deterministic platform: Reference, or CPU with one thread, ``simulation.deterministic``).

A process keeps the samplers (System, Context, ML model) of its last eight calculations, so the
next unit of the same calculation does not load them again; every unit resets the Context, so
this does not change results.
"""
import json
import os
import socket
import time
from collections import OrderedDict
from typing import List, Optional, Tuple

import numpy as np
from distributed import get_worker

from ..._files import write_text_atomic
from ...dynamics.integrators import create_mts_langevin_integrator
from ...embeddings.interpolation import INTERPOLATION_PARAMETER
from ...errors import FreeEnergyError, HybridError, InsufficientOverlapError
from ...hybrid import create_hybrid_system
from ...mm.system_files import BuiltSystem, load_build
from .. import plots
from ..endstate import box_nm, positions_nm
from ..estimators import mbar_analysis, neq_analysis
from ..hydration import alchemical_states, create_alchemical_system, state_label
from ..outcome import set_outcome
from ..protocols import run_segment, run_switch_segment, segment_sizes, switch_path
from ..sampler import ChainState, StateSampler
from ..settings import NEQSettings, SimulationSettings, from_dict
from .graph import Calculation, Unit, sample_block
from .seeds import unit_seed
from .series import build_ligand_phases
from .store import CampaignStore, first_folder

LIGAND_RESNAME = "LIG"
SAMPLER_CACHE_SIZE = 8
_SAMPLERS: "OrderedDict[tuple, Tuple[StateSampler, ChainState]]" = OrderedDict()


def run_unit(root: str, unit: Unit, calculation: Optional[Calculation] = None, build: Optional[dict] = None) -> dict:
    """Run ``unit`` of the campaign in ``root`` and write its result there.

    Parameters
    ----------
    root : str
        The campaign folder (visible from every worker).
    unit : Unit
    calculation : Calculation, optional
        The calculation the unit belongs to (all but ``build`` units).
    build : dict, optional
        ``build`` units: ``{"molblock": MDL text, "options": {phase: build_system kwargs}}``.

    Returns
    -------
    dict
        What ran where: ``unit``, ``seconds``, ``steps``, ``host``, ``pid``, ``worker``, for sampling
        units ``platform`` and ``integrator``, and ``failed`` (the reason) when the unit raised: an
        error in what it computes is a result (its ligand fails), not a crash of the worker.
    """
    store = CampaignStore(root)
    t0 = time.perf_counter()
    record = {"unit": unit.id, "steps": unit.steps, "host": socket.gethostname(), "pid": os.getpid(),
              "worker": _worker_address()}
    try:
        record.update(UNIT_FUNCTIONS[unit.kind](store, unit, build if unit.kind == "build" else calculation) or {})
    except Exception as exc:  # what the unit computes went wrong: its ligand fails, with this reason
        record["failed"] = failure_reason(unit, exc)
    record["seconds"] = time.perf_counter() - t0
    return record


def failure_reason(unit: Unit, exc: BaseException) -> str:
    """A one-line reason: the message of a refusal, the exception type and message otherwise."""
    where = f"{unit.kind} {unit.calculation}".strip() if unit.kind in ("build", "embed", "analysis") else unit.id
    text = str(exc) if isinstance(exc, HybridError) else f"{type(exc).__name__}: {exc}"
    return f"{where}: {text}"


def _worker_address() -> Optional[str]:
    try:
        return get_worker().address
    except ValueError:  # not inside a Dask worker
        return None


# ---- build and embed ---------------------------------------------------------------------------

def _build(store: CampaignStore, unit: Unit, build: dict) -> None:
    folders = {phase: str(store.build_dir(phase, unit.ligand)) for phase in build["options"]}
    summary = build_ligand_phases(build["molblock"], build["options"], folders)
    marker = store.output_of(unit)
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, _json(summary))


def _embed(store: CampaignStore, unit: Unit, calc: Calculation) -> None:
    ml = calc.settings["ml"]
    built = load_build(store.build_dir(calc.phase, calc.ligand))
    options = dict(ml.get("model_options") or {})
    if ml.get("model_index") is not None:
        options["model_index"] = ml["model_index"]
    hybrid = create_hybrid_system(built.topology, built.system, f"resname {LIGAND_RESNAME}", model=ml["model"],
                                  embedding=ml["embedding"], precision=ml["precision"], interpolate=True,
                                  positions=built.positions, model_options=options,
                                  mts_ready=ml.get("mts_substeps") is not None, **(ml.get("embedding_options") or {}))
    info = dict(built.info)
    info.update(hybrid.metadata())
    info["source"] = str(store.build_dir(calc.phase, calc.ligand))
    with first_folder(store.embed_dir(calc.ligand, calc.name)) as work:
        BuiltSystem(built.topology, hybrid.system, built.positions, info, built.state).save(work, "embed.json")


# ---- samplers ------------------------------------------------------------------------------------

def calculation_sampler(store: CampaignStore, calc: Calculation) -> Tuple[StateSampler, ChainState]:
    """The sampler of a calculation and its starting configuration (kept for the next unit).

    End-state corrections read the embedded System and decide, at the starting configuration
    and with the seed ``run_endstate`` uses, whether energies at other lambdas come from
    ``dE/dlambda``; MM legs build openmmtools' alchemical System from the MM build.
    """
    folder = store.embed_dir(calc.ligand, calc.name) if calc.kind == "endstate" else \
        store.build_dir(calc.phase, calc.ligand)
    stat = (folder / "system.xml").stat()
    key = (str(store.root.resolve()), calc.ligand, calc.name, stat.st_mtime_ns, stat.st_size)
    if key in _SAMPLERS:
        _SAMPLERS.move_to_end(key)
        return _SAMPLERS[key]
    built = load_build(folder)
    box = box_nm(built.system, built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions()
                 else None)
    start = ChainState(positions_nm(built.positions), None, box)
    if calc.kind == "endstate":
        correction = calc.settings["correction"]
        simulation = from_dict(SimulationSettings, correction["simulation"])
        substeps = (calc.settings.get("ml") or {}).get("mts_substeps")
        sampler = StateSampler(built.system, [INTERPOLATION_PARAMETER], simulation,
                               _respa_factory(simulation, substeps) if substeps else None)
        sampler.start_segment(start, unit_seed(calc.seed, "linearity", 0), {INTERPOLATION_PARAMETER: 0.0})
        sampler.check_linearity(INTERPOLATION_PARAMETER)
    else:
        alchemical = calc.settings["alchemical"]
        atoms = [a.index for a in built.topology.atoms() if a.residue.name == LIGAND_RESNAME]
        system = create_alchemical_system(built.system, atoms, alchemical["softcore_alpha"])
        sampler = StateSampler(system, list(_states(calc)[0]), from_dict(SimulationSettings,
                                                                         calc.settings["simulation"]))
    _SAMPLERS[key] = (sampler, start)
    while len(_SAMPLERS) > SAMPLER_CACHE_SIZE:
        _SAMPLERS.popitem(last=False)
    return sampler, start


def _respa_factory(simulation: SimulationSettings, substeps: int):
    """BAOAB-RESPA with the lambda-dependent forces (ML minus the region's MM terms) as the slow group."""
    def make(system, groups):
        if len(groups) != 1:
            raise FreeEnergyError(f"multiple time steps need the lambda-dependent forces in one force group, not "
                                  f"{sorted(groups)}: embed with mts_ready (ml.mts_substeps)")
        (slow,) = groups
        fast = sorted({f.getForceGroup() for f in system.getForces()} - {slow})
        return create_mts_langevin_integrator(simulation.timestep_fs, substeps, {"fast": fast, "slow": slow},
                                              simulation.temperature_K, simulation.friction_per_ps, system=system)
    return make


def _states(calc: Calculation) -> List[dict]:
    """The thermodynamic states of a calculation's MBAR windows, as parameter values."""
    if calc.kind == "endstate":
        return [{INTERPOLATION_PARAMETER: float(x)} for x in calc.settings["correction"]["mbar"]["lambdas"]]
    alchemical = calc.settings["alchemical"]
    return alchemical_states(alchemical["electrostatics_lambdas"], alchemical["sterics_lambdas"])


def state_names(calc: Calculation) -> List[str]:
    if calc.kind == "endstate":
        return [f"lambda={x:g}" for x in calc.settings["correction"]["mbar"]["lambdas"]]
    return [state_label(s) for s in _states(calc)]


def _minimize_iterations(calc: Calculation) -> Optional[int]:
    simulation = calc.settings["correction"]["simulation"] if calc.kind == "endstate" else calc.settings["simulation"]
    return simulation["minimize_iterations"]


def _label(unit: Unit) -> str:
    return f"{unit.ligand} {unit.calculation} {unit.stage}.{unit.segment}"


# ---- NEQ ------------------------------------------------------------------------------------------

def _neq(calc: Calculation) -> NEQSettings:
    return from_dict(NEQSettings, calc.settings["correction"]["neq"])


def _chain_unit(unit: Unit, stage: str, segment: int) -> Unit:
    return Unit(unit.ligand, "equilibrium" if stage.startswith("equilibrium") else "window", unit.calculation, stage,
                segment)


def _equilibrium_block(store: CampaignStore, unit: Unit, calc: Calculation) -> None:
    """One segment of the equilibrium chain at lambda = 0 or 1 (``run_switching``'s stages)."""
    sampler, start = calculation_sampler(store, calc)
    neq = _neq(calc)
    end = int(unit.stage[-1])
    values = {INTERPOLATION_PARAMETER: float(end)}
    counts = segment_sizes(neq.n_switches, neq.samples_per_segment)
    seed = unit_seed(calc.seed, unit.stage, unit.segment)
    if unit.segment == 0:
        initial = start if end == 0 else store.load_states(_chain_unit(unit, "equilibrium_0", len(counts)))[-1]
        run_segment(sampler, initial, seed, values, equilibration_steps=neq.equilibration_steps,
                    minimize_iterations=_minimize_iterations(calc) if end == 0 else None, label=_label(unit))
        states = [sampler.chain_state()]
    else:
        previous = store.load_states(_chain_unit(unit, unit.stage, unit.segment - 1))[-1]
        states = run_segment(sampler, previous, seed, values, n_samples=counts[unit.segment - 1],
                             steps_between_samples=neq.steps_between_samples, take_sample=sampler.chain_state,
                             label=_label(unit))
    store.save_states(unit, states)
    return _provenance(sampler)


def _provenance(sampler: StateSampler) -> dict:
    return {"platform": sampler.platform.getName(), "integrator": type(sampler.integrator).__name__}


def _switch_batch(store: CampaignStore, unit: Unit, calc: Calculation) -> None:
    """One batch of forward or reverse switches, from the saved end-state samples."""
    sampler, _ = calculation_sampler(store, calc)
    neq = _neq(calc)
    counts = segment_sizes(neq.n_switches, neq.samples_per_segment)
    groups = segment_sizes(neq.n_switches, neq.switches_per_segment)
    first = sum(groups[:unit.segment])
    stage = "equilibrium_0" if unit.stage == "forward" else "equilibrium_1"
    blocks = {}
    starts = []
    for index in range(first, first + groups[unit.segment]):
        block = sample_block(index, counts)
        if block not in blocks:
            blocks[block] = store.load_states(_chain_unit(unit, stage, block))
        starts.append(blocks[block][index - sum(counts[:block - 1])])
    works = run_switch_segment(sampler, INTERPOLATION_PARAMETER, switch_path(neq.switch_steps, unit.stage), starts,
                               unit_seed(calc.seed, unit.stage, unit.segment), _label(unit))
    store.save_arrays(unit, works=np.array(works, dtype=float))
    return _provenance(sampler)


def _works(store: CampaignStore, calc: Calculation, direction: str) -> np.ndarray:
    neq = _neq(calc)
    batches = len(segment_sizes(neq.n_switches, neq.switches_per_segment))
    return np.concatenate([store.load_arrays(Unit(calc.ligand, "switches", calc.name, direction, b))["works"]
                           for b in range(batches)])


# ---- MBAR windows -----------------------------------------------------------------------------------

def _sampling(calc: Calculation) -> dict:
    return calc.settings["correction"]["mbar"] if calc.kind == "endstate" else calc.settings["sampling"]


def _window(store: CampaignStore, unit: Unit, calc: Calculation) -> None:
    """One MBAR window: equilibration and all its samples (``run_windows``' segments and seeds)."""
    sampler, start = calculation_sampler(store, calc)
    sampling = _sampling(calc)
    states = _states(calc)
    k = int(unit.stage[len("window"):])
    values = states[k]
    if k == 0:
        state = start
    else:
        arrays = store.load_arrays(_chain_unit(unit, f"window{k - 1:02d}", 0))
        state = ChainState(arrays["positions"], arrays["velocities"], arrays.get("box"))
    counts = segment_sizes(sampling["n_samples"], sampling["samples_per_segment"])
    records = []
    for segment in range(1 + len(counts)):
        seed = unit_seed(calc.seed, unit.stage, segment)
        if segment == 0:
            run_segment(sampler, state, seed, values, equilibration_steps=sampling["equilibration_steps"],
                        minimize_iterations=_minimize_iterations(calc) if k == 0 else None, label=_label(unit))
        else:
            records += run_segment(sampler, state, seed, values, n_samples=counts[segment - 1],
                                   steps_between_samples=sampling["steps_between_samples"],
                                   take_sample=lambda: sampler.reduced_potentials(states, values), label=_label(unit))
        state = sampler.chain_state()
    arrays = {"reduced_potentials": np.array(records, dtype=float).reshape(-1, len(states)),
              "positions": state.positions, "velocities": state.velocities}
    if state.box is not None:
        arrays["box"] = state.box
    store.save_arrays(unit, **arrays)
    return _provenance(sampler)


# ---- analysis -------------------------------------------------------------------------------------

def _analysis(store: CampaignStore, unit: Unit, calc: Calculation) -> None:
    """The calculation's estimate (BAR or MBAR), its plots and ``results.json``."""
    out = store.calculation_dir(calc.ligand, calc.name)
    if calc.kind == "endstate":
        correction = calc.settings["correction"]
        temperature = correction["simulation"]["temperature_K"]
        min_overlap, min_effective = correction["min_overlap"], correction["min_effective_samples"]
    else:
        temperature = calc.settings["simulation"]["temperature_K"]
        min_overlap, min_effective = calc.settings["min_overlap"], calc.settings["min_effective_samples"]
    title = f"{calc.ligand} {calc.name}"
    draw = calc.settings.get("plots", True)
    results = {"workflow": "campaign calculation", "ligand": calc.ligand, "calculation": calc.name,
               "kind": calc.kind, "method": calc.method, "seed": calc.seed}
    error = None
    if calc.method == "neq":
        w_f, w_r = _works(store, calc, "forward"), _works(store, calc, "reverse")
        try:
            analysis = neq_analysis(w_f, w_r, temperature, min_overlap)
        except InsufficientOverlapError as exc:
            analysis, error = exc.analysis, exc
        results["works_kT"] = {"forward": w_f.tolist(), "reverse": w_r.tolist()}
        if draw:
            plots.plot_work_distributions(w_f, w_r, analysis["estimate"].value_kT, out / "work_distributions.png",
                                          f"{title}: nonequilibrium work")
    else:
        names = state_names(calc)
        windows = [store.load_arrays(_chain_unit(unit, f"window{k:02d}", 0))["reduced_potentials"]
                   for k in range(len(names))]
        try:
            analysis = mbar_analysis(windows, temperature, _sampling(calc)["decorrelate"], min_overlap, names)
        except InsufficientOverlapError as exc:
            analysis, error = exc.analysis, exc
        results["states"] = _states(calc)
        if draw:
            plots.plot_overlap_matrix(analysis["overlap_matrix"], out / "overlap_matrix.png", names,
                                      f"{title}: MBAR overlap")
    if draw:
        plots.plot_convergence(analysis["convergence"], out / "convergence.png", f"{title}: convergence")
    set_outcome(results, analysis, None if error is None else str(error), min_effective)
    write_text_atomic(store.results_path(calc.ligand, calc.name), _json(results))


def _json(data) -> str:
    return json.dumps(data, indent=2, allow_nan=True) + "\n"


UNIT_FUNCTIONS = {"build": _build, "embed": _embed, "equilibrium": _equilibrium_block, "switches": _switch_batch,
                  "window": _window, "analysis": _analysis}


def clear_sampler_cache() -> None:
    """Forget the samplers this process keeps (frees their Contexts)."""
    _SAMPLERS.clear()
