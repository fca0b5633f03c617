"""Minimise and run Langevin MD on a (hybrid) System, with a CSV log and NaN checks."""
import json
import math
import time
from pathlib import Path
from typing import Optional

import openmm
import openmm.app as app
from openmm import unit

from .._util import progress
from ..errors import HybridError, SimulationError
from ..forces import default_platform, for_platform, is_ml_force
from .integrators import create_mts_langevin_integrator, describe_mts
from .stepping import step_or_stop
from .warmup import DEFAULT_WARMUP_STEPS, check_warmup_settings, warm_up

CSV_COLUMNS = ["step", "time_ps", "potential_kjmol", "kinetic_kjmol", "total_kjmol", "ml_kjmol",
               "temperature_k", "speed_ns_per_day"]


class HybridLogReporter:
    """Writes the CSV log, shows progress and stops on a NaN or infinite energy.

    Columns: step, time (ps), potential, kinetic and total energy and the ML force group's
    energy (kJ/mol), instantaneous temperature (K), speed (ns/day since the start).  For an
    MTS-ready System the ML group is the slow group, whose energy is E_ML (+ embedding
    corrections) - E_MM,internal(region); its column is then called ``slow_kjmol``
    (``ml_column``).
    """

    def __init__(self, path, interval: int, total_steps: int, ml_group: Optional[int], n_dof: int,
                 first_step: int = 0, ml_column: str = "ml_kjmol"):
        self._file = open(path, "w")
        self._file.write(",".join(c if c != "ml_kjmol" else ml_column for c in CSV_COLUMNS) + "\n")
        self._interval = int(interval)
        self._total = int(total_steps)
        self._first = int(first_step)
        self._ml_group = ml_group
        self._n_dof = n_dof
        self._start = None
        self._start_time_ps = None

    def describeNextReport(self, simulation):
        steps = self._interval - simulation.currentStep % self._interval
        return {"steps": steps, "periodic": None, "include": ["energy"]}

    def report(self, simulation, state):
        step = simulation.currentStep
        now = time.perf_counter()
        time_ps = state.getTime().value_in_unit(unit.picosecond)
        if self._start is None:
            self._start, self._start_time_ps = now, time_ps
        potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        ml = float("nan")
        if self._ml_group is not None:
            ml = simulation.context.getState(getEnergy=True, groups={self._ml_group}).getPotentialEnergy() \
                .value_in_unit(unit.kilojoule_per_mole)
        if not all(math.isfinite(x) for x in (potential, kinetic) + ((ml,) if self._ml_group is not None else ())):
            self.close()
            raise SimulationError(f"energy is not finite at step {step} (potential {potential}, kinetic "
                                  f"{kinetic}, ML {ml} kJ/mol): the simulation blew up; try a smaller "
                                  f"time step or check the starting structure")
        temperature = 2 * kinetic / (self._n_dof * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(
            unit.kilojoule_per_mole / unit.kelvin)) if self._n_dof > 0 else 0.0
        elapsed = now - self._start
        speed = (time_ps - self._start_time_ps) / 1000 / (elapsed / 86400) if elapsed > 0 else 0.0
        row = [step, time_ps, potential, kinetic, potential + kinetic, ml, temperature, speed]
        self._file.write(",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in row) + "\n")
        self._file.flush()
        done = step - self._first
        progress(f"MD step {done}/{self._total} ({100 * done / max(self._total, 1):.0f}%): "
                 f"E_pot {potential:.1f} kJ/mol, T {temperature:.1f} K, {speed:.3f} ns/day")

    def close(self):
        if not self._file.closed:
            self._file.close()


def minimize_with_progress(simulation, max_iterations: int = 1000, chunk: int = 100,
                           tolerance=10 * unit.kilojoule_per_mole / unit.nanometer) -> float:
    """L-BFGS minimisation in chunks of ``chunk`` iterations, showing progress after each.

    OpenMM's ``MinimizationReporter`` would be the natural hook, but a Python reporter makes
    the minimiser hold the GIL, and openmm-torch's TorchForce (used on GPU platforms, see
    :func:`~openmm_hybrid.ml_force.for_platform`) refuses to run autograd under it (the
    plugin's TorchModuleForce does not).  Stops when
    a chunk changes the energy by less than 0.01 kJ/mol or after ``max_iterations``
    (0: until converged).  Returns the final energy in kJ/mol.
    """
    def energy():
        return simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    done, previous = 0, energy()
    while True:
        step = chunk if not max_iterations else min(chunk, max_iterations - done)
        simulation.minimizeEnergy(tolerance=tolerance, maxIterations=step)
        done += step
        current = energy()
        if not math.isfinite(current):
            raise SimulationError(f"energy minimisation produced a non-finite energy ({current}) (step 0)")
        limit = f"/{max_iterations}" if max_iterations else ""
        progress(f"minimisation: {done}{limit} iterations, E {current:.1f} kJ/mol")
        if abs(previous - current) < 0.01 or (max_iterations and done >= max_iterations):
            return current
        previous = current


def degrees_of_freedom(system: openmm.System) -> int:
    n = sum(3 for i in range(system.getNumParticles()) if system.getParticleMass(i) > 0 * unit.amu)
    n -= system.getNumConstraints()
    if any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces()):
        n -= 3
    return n


def ml_force_group(system: openmm.System) -> Optional[int]:
    groups = {f.getForceGroup() for f in system.getForces() if is_ml_force(f)}
    return groups.pop() if len(groups) == 1 else None


def _ml_group_column(system: openmm.System, group: Optional[int]) -> str:
    """``ml_kjmol``, or ``slow_kjmol`` when the ML group also holds MM terms (MTS-ready System)."""
    if group is not None and any(f.getForceGroup() == group and not is_ml_force(f) for f in system.getForces()):
        return "slow_kjmol"
    return "ml_kjmol"


def run_simulation(system: openmm.System, topology, positions, out_dir, steps: int = 1000,
                   timestep=1.0 * unit.femtosecond, temperature=300 * unit.kelvin,
                   friction=1.0 / unit.picosecond, platform: Optional[str] = None,
                   minimize: bool = True, minimize_iterations: int = 1000, report_interval: Optional[int] = None,
                   box_vectors=None, seed: int = 0, parameters: Optional[dict] = None,
                   mts_substeps: Optional[int] = None, force_groups: Optional[dict] = None,
                   warmup_steps: Optional[int] = DEFAULT_WARMUP_STEPS) -> dict:
    """Minimise, warm up (:func:`~openmm_hybrid.dynamics.warmup.warm_up`), then run Langevin dynamics
    (``LangevinMiddleIntegrator``, or BAOAB-RESPA
    (:func:`openmm_hybrid.integrators.create_mts_langevin_integrator`) with ``mts_substeps``).

    Writes into ``out_dir``: ``trajectory.dcd``, ``log.csv`` (see :class:`HybridLogReporter`),
    ``final_state.xml``, ``final.pdb`` and ``run.json`` (settings and speed).

    Parameters
    ----------
    system : openmm.System
    topology : openmm.app.Topology
    positions : Quantity
        Starting positions (nm).
    out_dir : str or Path
    steps : int
        Number of MD steps.
    timestep : Quantity
        Integration time step (default 1 fs); with ``mts_substeps`` the OUTER step.
    temperature : Quantity
        Bath temperature (K).
    friction : Quantity
        Langevin friction (1/ps).
    platform : str, optional
        OpenMM platform name (default: the fastest one registered).  On platforms without a
        native kernel for the ML forces (CUDA, OpenCL) the System is converted with
        :func:`openmm_hybrid.ml_force.for_platform` first.
    minimize : bool
        Energy-minimise first.
    minimize_iterations : int
        Most L-BFGS iterations (0: until converged, which can take long for solvated systems).
    report_interval : int, optional
        Steps between log rows and trajectory frames (default: steps/20, at least 1).
    seed : int
        Random seed of the integrator and initial velocities.
    mts_substeps : int, optional
        Multiple-time-step integration (:mod:`openmm_hybrid.integrators`): the slow group once per
        ``timestep``, the fast groups ``mts_substeps`` times per ``timestep``.  Needs an MTS-ready
        System and its ``force_groups``.
    force_groups : dict, optional
        ``{"fast": [...], "slow": int}`` (from ``embed.json``), required with ``mts_substeps``.
    warmup_steps : int
        Steps of heating with velocity rescaling before the production steps (default 1000; 0:
        velocities drawn at ``temperature`` only); not logged, and the production starts at step 0.

    Returns
    -------
    dict
        The contents of ``run.json``, including ``ns_per_day``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, not {steps}")
    report_interval = int(report_interval or max(1, steps // 20))
    if mts_substeps is not None:
        if not force_groups or "fast" not in force_groups or "slow" not in force_groups:
            raise HybridError("multiple-time-step integration needs the System's fast and slow force groups: "
                              "embed it with --mts-ready (create_hybrid_system(..., mts_ready=True))")
        integrator = create_mts_langevin_integrator(timestep, mts_substeps, force_groups, temperature, friction,
                                                    system=system, seed=seed)
        scheme = describe_mts("RESPAIntegrator (BAOAB-RESPA Langevin)", timestep, mts_substeps, force_groups)
    else:
        integrator = openmm.LangevinMiddleIntegrator(temperature, friction, timestep)
        integrator.setRandomNumberSeed(seed)
        scheme = {"integrator": "LangevinMiddleIntegrator", "scheme": "single time step"}
    platform = openmm.Platform.getPlatformByName(platform) if platform else default_platform()
    simulation = app.Simulation(topology, for_platform(system, platform), integrator, platform)
    platform_name = simulation.context.getPlatform().getName()
    if box_vectors is not None:
        simulation.context.setPeriodicBoxVectors(*box_vectors)
    simulation.context.setPositions(positions)
    for name, value in (parameters or {}).items():
        simulation.context.setParameter(name, value)

    def potential():
        return simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    e_start = potential()
    if not math.isfinite(e_start):
        raise SimulationError(f"the starting potential energy is {e_start} (step 0): check the input structure")
    result = {"platform": platform_name, "steps": steps, "timestep_fs": timestep.value_in_unit(unit.femtosecond),
              "temperature_k": temperature.value_in_unit(unit.kelvin),
              "friction_per_ps": friction.value_in_unit(unit.picosecond ** -1),
              **scheme, "seed": seed, "initial_energy_kjmol": e_start}
    if minimize:
        progress(f"minimising (starting energy {e_start:.1f} kJ/mol) on {platform_name}")
        t0 = time.perf_counter()
        e_min = minimize_with_progress(simulation, int(minimize_iterations))
        progress(f"minimised to {e_min:.1f} kJ/mol in {time.perf_counter() - t0:.1f} s")
        result["minimized_energy_kjmol"] = e_min
    result["warmup"] = warm_up(simulation, temperature, check_warmup_settings(warmup_steps), degrees_of_freedom(system),
                               seed=seed)
    simulation.currentStep = 0
    simulation.context.setTime(0.0)

    ml_group = ml_force_group(system)
    log = HybridLogReporter(out / "log.csv", report_interval, steps, ml_group, degrees_of_freedom(system),
                            ml_column=_ml_group_column(system, ml_group))
    simulation.reporters.append(log)
    simulation.reporters.append(app.DCDReporter(str(out / "trajectory.dcd"), report_interval))
    log.report(simulation, simulation.context.getState(getEnergy=True))
    if mts_substeps is not None:
        progress(f"running {steps} outer steps of {result['timestep_fs']} fs BAOAB-RESPA Langevin MD at "
                 f"{result['temperature_k']} K: slow group {result['force_groups']['slow']} once per step, fast "
                 f"groups {result['force_groups']['fast']} {mts_substeps}x per step "
                 f"(inner step {result['inner_timestep_fs']:g} fs)")
    else:
        progress(f"running {steps} steps of {result['timestep_fs']} fs Langevin MD at {result['temperature_k']} K")
    t0 = time.perf_counter()
    try:
        step_or_stop(simulation, steps)
    finally:
        log.close()
    wall = time.perf_counter() - t0
    state = simulation.context.getState(getPositions=True, getVelocities=True, getEnergy=True,
                                        getParameters=True, enforcePeriodicBox=False)
    e_final = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not math.isfinite(e_final):
        raise SimulationError(f"energy is not finite at step {steps} (final state)")
    (out / "final_state.xml").write_text(openmm.XmlSerializer.serialize(state))
    with open(out / "final.pdb", "w") as handle:
        app.PDBFile.writeFile(simulation.topology, state.getPositions(), handle, keepIds=True)
    simulated_ns = steps * timestep.value_in_unit(unit.nanosecond)
    result.update({"final_energy_kjmol": e_final, "wall_seconds": wall,
                   "ns_per_day": simulated_ns / (wall / 86400) if wall > 0 else None,
                   "ms_per_step": 1000 * wall / steps if steps else None})
    (out / "run.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
