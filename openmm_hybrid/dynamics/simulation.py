"""Minimise and run Langevin MD on a (hybrid) System, with a CSV log, blow-up detection,
checkpoints, resume and a clean stop on SIGINT/SIGTERM."""
import json
import math
import time
from pathlib import Path
from typing import Optional

import openmm
import openmm.app as app
from openmm import unit

from .._files import write_text_atomic
from .._util import StopRequests, as_quantity, check_range, openmm_errors, progress
from ..errors import HybridError, RunInterrupted, SimulationError
from ..forces import for_platform, is_ml_force, platform_by_name
from ..forces.fingerprint import system_fingerprint
from . import run_checkpoint
from .integrators import create_mts_langevin_integrator, describe_mts
from .stability import BlowUpDetector
from .stepping import step_or_stop
from .warmup import DEFAULT_WARMUP_STEPS, check_warmup_settings, warm_up

CSV_COLUMNS = ["step", "time_ps", "potential_kjmol", "kinetic_kjmol", "total_kjmol", "ml_kjmol",
               "temperature_k", "speed_ns_per_day"]


class HybridLogReporter:
    """Writes the CSV log, shows progress and stops a run that blows up.

    Columns: step, time (ps), potential, kinetic and total energy and the ML force group's
    energy (kJ/mol), instantaneous temperature (K), speed (ns/day since the start).  For an
    MTS-ready System the ML group is the slow group, whose energy is E_ML (+ embedding
    corrections) - E_MM,internal(region); its column is then called ``slow_kjmol``
    (``ml_column``).  At every report the energies must be finite and ``detector`` (a
    :class:`~openmm_hybrid.dynamics.stability.BlowUpDetector`) must accept the positions and
    temperature; otherwise :class:`SimulationError` names the step.  ``append`` continues an
    existing log (a resumed run).
    """

    def __init__(self, path, interval: int, total_steps: int, ml_group: Optional[int], n_dof: int,
                 first_step: int = 0, ml_column: str = "ml_kjmol", detector: Optional[BlowUpDetector] = None,
                 append: bool = False):
        self._file = open(path, "a" if append else "w")
        if not append:
            self._file.write(",".join(c if c != "ml_kjmol" else ml_column for c in CSV_COLUMNS) + "\n")
        self._interval = int(interval)
        self._total = int(total_steps)
        self._first = int(first_step)
        self._ml_group = ml_group
        self._n_dof = n_dof
        self._detector = detector
        self._start = None
        self._start_time_ps = None

    def describeNextReport(self, simulation):
        steps = self._interval - simulation.currentStep % self._interval
        # periodic None: the positions the DCD reporter gets too, so that this reporter (first in the
        # list) reports before it (OpenMM groups reporters by the wrapping they ask for)
        return {"steps": steps, "periodic": None, "include": ["energy", "positions"]}

    def report(self, simulation, state, when: str = ""):
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
        at = f"step {step}{' ' + when if when else ''}"
        if not all(math.isfinite(x) for x in (potential, kinetic) + ((ml,) if self._ml_group is not None else ())):
            self.close()
            raise SimulationError(f"energy is not finite at {at} (potential {potential}, kinetic "
                                  f"{kinetic}, ML {ml} kJ/mol): the simulation blew up; try a smaller "
                                  f"time step or check the starting structure")
        temperature = 2 * kinetic / (self._n_dof * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(
            unit.kilojoule_per_mole / unit.kelvin)) if self._n_dof > 0 else 0.0
        if self._detector is not None:
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) \
                if simulation.system.usesPeriodicBoundaryConditions() else None
            try:
                self._detector.check(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), box,
                                     temperature if step > 0 else None, step, when)
            except SimulationError:
                self.close()
                raise
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


def check_run_arguments(steps, timestep_fs: float, temperature_K: float, friction_per_ps: float,
                        report_interval=None, checkpoint_interval=None, minimize_iterations=None,
                        mts_substeps=None) -> None:
    """Refuse MD settings outside their range (plain numbers: fs, K, 1/ps), naming the option."""
    check_range("steps (--steps)", steps, 1, integer=True, hint="the number of MD steps to run")
    check_range("time step (--timestep)", timestep_fs, 0.0, include_minimum=False, units="fs",
                hint="1 fs for flexible ligand X-H bonds (the default), 2 fs with hydrogen mass repartitioning")
    check_range("temperature (--temperature)", temperature_K, 0.0, include_minimum=False, units="K")
    check_range("friction", friction_per_ps, 0.0, units="1/ps")
    if report_interval is not None:
        check_range("report interval (--report-interval)", report_interval, 1, integer=True, units="steps")
    if checkpoint_interval is not None:
        check_range("checkpoint interval (--checkpoint-interval)", checkpoint_interval, 1, integer=True,
                    units="steps")
    if minimize_iterations is not None:
        check_range("minimisation iterations (--minimize-iterations)", minimize_iterations, 0, integer=True)
    if mts_substeps is not None:
        check_range("MTS substeps (--mts)", mts_substeps, 1, integer=True)


def run_simulation(system: openmm.System, topology, positions, out_dir, steps: int = 1000,
                   timestep=1.0 * unit.femtosecond, temperature=300 * unit.kelvin,
                   friction=1.0 / unit.picosecond, platform: Optional[str] = None,
                   minimize: bool = True, minimize_iterations: int = 1000, report_interval: Optional[int] = None,
                   box_vectors=None, seed: int = 0, parameters: Optional[dict] = None,
                   mts_substeps: Optional[int] = None, force_groups: Optional[dict] = None,
                   checkpoint_interval: Optional[int] = None, resume: bool = False,
                   warmup_steps: Optional[int] = DEFAULT_WARMUP_STEPS) -> dict:
    """Minimise, warm up (:func:`~openmm_hybrid.dynamics.warmup.warm_up`), then run Langevin dynamics
    (``LangevinMiddleIntegrator``, or BAOAB-RESPA
    (:func:`openmm_hybrid.integrators.create_mts_langevin_integrator`) with ``mts_substeps``).

    Writes into ``out_dir``: ``trajectory.dcd``, ``log.csv`` (see :class:`HybridLogReporter`),
    ``final_state.xml``, ``final.pdb`` and ``run.json`` (settings and speed).  While it runs,
    a checkpoint is saved every ``checkpoint_interval`` steps (:mod:`.run_checkpoint`); SIGINT
    (Ctrl-C) and SIGTERM stop the run cleanly at the next report or checkpoint boundary, after
    saving one, with :class:`~openmm_hybrid.errors.RunInterrupted`; ``resume=True`` continues
    such a run in the same folder.  The run stops with :class:`SimulationError` naming the step
    (and atoms) when it blows up: non-finite energies, bonds torn apart, temperature far above
    the bath's (:mod:`.stability`, checked at every report and after minimisation).

    Parameters
    ----------
    system : openmm.System
    topology : openmm.app.Topology
    positions : Quantity
        Starting positions (nm).
    out_dir : str or Path
    steps : int
        Number of MD steps (at least 1; with ``resume``, the total including the steps done).
    timestep : Quantity or float
        Integration time step (fs, > 0; default 1 fs); with ``mts_substeps`` the OUTER step.
    temperature : Quantity or float
        Bath temperature (K, > 0).
    friction : Quantity or float
        Langevin friction (1/ps, >= 0).
    platform : str, optional
        OpenMM platform name (default: the fastest one registered; an unknown name is refused
        with the list of available ones).  On platforms without a native kernel for the ML
        forces (CUDA, OpenCL) the System is converted with
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
    checkpoint_interval : int, optional
        Steps between checkpoints (default: the report interval).
    resume : bool
        Continue the run whose checkpoint is in ``out_dir`` (same System, settings and platform,
        else :class:`~openmm_hybrid.errors.CheckpointError` names what differs); the log and
        trajectory are cut back to the checkpoint's step and continued.
    warmup_steps : int
        Steps of heating with velocity rescaling before the production steps (default 1000; 0:
        velocities drawn at ``temperature`` only); not logged, and the production starts at step 0.
        A resumed run does not warm up again.

    Returns
    -------
    dict
        The contents of ``run.json``, including ``ns_per_day``.

    Raises
    ------
    HybridError
        Arguments out of range, unknown platform.
    SimulationError
        A blow-up, or an error raised by a force (an ML model) during the run.
    RunInterrupted
        SIGINT or SIGTERM; the checkpoint is saved and the message says how to resume.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timestep = as_quantity(timestep, unit.femtosecond)
    temperature = as_quantity(temperature, unit.kelvin)
    friction = as_quantity(friction, unit.picosecond ** -1)
    warmup_steps = check_warmup_settings(warmup_steps)
    check_run_arguments(steps, timestep.value_in_unit(unit.femtosecond), temperature.value_in_unit(unit.kelvin),
                        friction.value_in_unit(unit.picosecond ** -1), report_interval, checkpoint_interval,
                        minimize_iterations, mts_substeps)
    steps = int(steps)
    report_interval = int(report_interval or max(1, steps // 20))
    checkpoint_interval = int(checkpoint_interval or report_interval)
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
    platform = platform_by_name(platform)
    with openmm_errors("while creating the OpenMM Context"):
        simulation = app.Simulation(topology, for_platform(system, platform), integrator, platform)
    platform_name = simulation.context.getPlatform().getName()
    fingerprint = {"system": system_fingerprint(system), "timestep_fs": timestep.value_in_unit(unit.femtosecond),
                   "temperature_k": temperature.value_in_unit(unit.kelvin),
                   "friction_per_ps": friction.value_in_unit(unit.picosecond ** -1), "seed": seed,
                   "mts_substeps": mts_substeps, "force_groups": force_groups, "report_interval": report_interval,
                   "parameters": parameters or {}, "platform": platform_name}
    n_dof = degrees_of_freedom(system)
    detector = BlowUpDetector(system, topology, positions, temperature.value_in_unit(unit.kelvin), n_dof,
                              box_vectors)
    ml_group = ml_force_group(system)

    if resume:
        checkpoint = run_checkpoint.read_checkpoint(out, fingerprint)
        if checkpoint["step"] > steps:
            raise HybridError(f"the checkpoint in '{out}' is at step {checkpoint['step']}, beyond --steps {steps}: "
                              f"give at least that many steps")
        exact = run_checkpoint.restore(simulation.context, checkpoint)
        result = dict(checkpoint["record"])
        first = checkpoint["step"]
        progress(f"resuming at step {first} of {steps} from the checkpoint in {out}"
                 + ("" if exact else " (portable state: the random-number stream starts afresh)"))
        run_checkpoint.truncate_log(out / "log.csv", first)
        periodic = topology.getPeriodicBoxVectors() is not None
        run_checkpoint.truncate_dcd(out / "trajectory.dcd", first // report_interval, topology.getNumAtoms(),
                                    periodic)
        log = HybridLogReporter(out / "log.csv", report_interval, steps, ml_group, n_dof,
                                ml_column=_ml_group_column(system, ml_group), detector=detector, append=True)
        dcd = app.DCDReporter(str(out / "trajectory.dcd"), report_interval,
                              append=(out / "trajectory.dcd").is_file() and first >= report_interval)
    else:
        first = 0
        result = _start(simulation, positions, box_vectors, parameters, temperature, seed, minimize,
                        minimize_iterations, platform_name, warmup_steps, n_dof, detector)
        result.update({"platform": platform_name, "steps": steps,
                       "timestep_fs": timestep.value_in_unit(unit.femtosecond),
                       "temperature_k": temperature.value_in_unit(unit.kelvin),
                       "friction_per_ps": friction.value_in_unit(unit.picosecond ** -1), **scheme, "seed": seed})
        log = HybridLogReporter(out / "log.csv", report_interval, steps, ml_group, n_dof,
                                ml_column=_ml_group_column(system, ml_group), detector=detector)
        dcd = app.DCDReporter(str(out / "trajectory.dcd"), report_interval)
        state = simulation.context.getState(getEnergy=True, getPositions=True, enforcePeriodicBox=False)
        log.report(simulation, state, "after minimisation" if minimize else "")
    simulation.reporters.extend([log, dcd])
    result.update({"steps": steps, "checkpoint_interval": checkpoint_interval})
    _announce(result, steps - first, mts_substeps)

    t0 = time.perf_counter()
    try:
        with StopRequests() as stop:
            _advance(simulation, steps, report_interval, checkpoint_interval, stop, out, fingerprint, result)
    finally:
        log.close()
    wall = time.perf_counter() - t0
    with openmm_errors(f"at step {simulation.currentStep} (final state)"):
        state = simulation.context.getState(getPositions=True, getVelocities=True, getEnergy=True,
                                            getParameters=True, enforcePeriodicBox=False)
    e_final = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not math.isfinite(e_final):
        raise SimulationError(f"energy is not finite at step {steps} (final state)")
    write_text_atomic(out / "final_state.xml", openmm.XmlSerializer.serialize(state))
    with open(out / "final.pdb", "w") as handle:
        app.PDBFile.writeFile(simulation.topology, state.getPositions(), handle, keepIds=True)
    done = steps - first
    simulated_ns = done * timestep.value_in_unit(unit.nanosecond)
    result.update({"final_energy_kjmol": e_final, "wall_seconds": wall, "resumed_at_step": first if resume else None,
                   "ns_per_day": simulated_ns / (wall / 86400) if wall > 0 and done else None,
                   "ms_per_step": 1000 * wall / done if done else None})
    write_text_atomic(out / "run.json", json.dumps(result, indent=2) + "\n")
    run_checkpoint.remove_checkpoint(out)
    return result


def _start(simulation, positions, box_vectors, parameters, temperature, seed, minimize, minimize_iterations,
           platform_name, warmup_steps: int, n_dof: int, detector: BlowUpDetector) -> dict:
    """Set the starting state, minimise and warm up; returns the first entries of ``run.json``."""
    with openmm_errors("at the starting structure (step 0)"):
        if box_vectors is not None:
            simulation.context.setPeriodicBoxVectors(*box_vectors)
        simulation.context.setPositions(positions)
        for name, value in (parameters or {}).items():
            simulation.context.setParameter(name, value)
        e_start = simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole)
    if not math.isfinite(e_start):
        raise SimulationError(f"the starting potential energy is {e_start} (step 0): check the input structure")
    result = {"initial_energy_kjmol": e_start}
    if minimize:
        progress(f"minimising (starting energy {e_start:.1f} kJ/mol) on {platform_name}")
        t0 = time.perf_counter()
        with openmm_errors("during energy minimisation"):
            e_min = minimize_with_progress(simulation, int(minimize_iterations))
        progress(f"minimised to {e_min:.1f} kJ/mol in {time.perf_counter() - t0:.1f} s")
        result["minimized_energy_kjmol"] = e_min
    periodic = simulation.system.usesPeriodicBoundaryConditions()

    def check(done: int) -> None:
        state = simulation.context.getState(getPositions=True, enforcePeriodicBox=False)
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) if periodic else None
        detector.check(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), box, None, done,
                       "of the warm-up")

    result["warmup"] = warm_up(simulation, temperature, warmup_steps, n_dof, seed=seed, check=check)
    simulation.currentStep = 0
    simulation.context.setTime(0.0)
    return result


def _announce(result: dict, steps: int, mts_substeps) -> None:
    if mts_substeps is not None:
        progress(f"running {steps} outer steps of {result['timestep_fs']} fs BAOAB-RESPA Langevin MD at "
                 f"{result['temperature_k']} K: slow group {result['force_groups']['slow']} once per step, fast "
                 f"groups {result['force_groups']['fast']} {mts_substeps}x per step "
                 f"(inner step {result['inner_timestep_fs']:g} fs)")
    else:
        progress(f"running {steps} steps of {result['timestep_fs']} fs Langevin MD at {result['temperature_k']} K")


def _advance(simulation, steps: int, report_interval: int, checkpoint_interval: int, stop: StopRequests,
             out: Path, fingerprint: dict, record: dict) -> None:
    """Step to ``steps`` in chunks that end at report and checkpoint boundaries; checkpoint every
    ``checkpoint_interval`` steps, and on a stop request save one and raise RunInterrupted."""
    chunk = max(1, min(report_interval, checkpoint_interval, 100))
    last_saved = simulation.currentStep
    while simulation.currentStep < steps:
        step = simulation.currentStep
        target = min(steps, (step // chunk + 1) * chunk)
        try:
            with openmm_errors(f"between MD steps {step} and {target}"):
                step_or_stop(simulation, target - step)
        except ValueError as exc:  # a trajectory reporter refusing NaN or infinite coordinates
            if "nan" not in str(exc).lower() and "infinite" not in str(exc).lower():
                raise
            raise SimulationError(f"coordinates are not finite at step {simulation.currentStep} ({exc}); the "
                                  f"simulation blew up: try a smaller time step or check the starting "
                                  f"structure") from exc
        step = simulation.currentStep
        if stop.requested or (step - last_saved >= checkpoint_interval and step < steps):
            run_checkpoint.save_checkpoint(out, simulation.context, fingerprint, record)
            last_saved = step
        if stop.requested:
            raise RunInterrupted(f"stopped by {stop.requested} at step {step} of {steps}; the state is saved in "
                                 f"'{out}': rerun the same command with --resume to continue (Python: "
                                 f"run_simulation(..., resume=True))")
