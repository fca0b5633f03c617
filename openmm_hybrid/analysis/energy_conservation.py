"""Energy conservation of a System's dynamics: the drift of the total energy under NVE integration.

A force that is not the exact gradient of its energy (wrong units, a missing term, a
discontinuity) makes the total energy of velocity-Verlet dynamics drift; a consistent one only
fluctuates, with an error of order dt^2.  :func:`nve_drift` equilibrates briefly with Langevin
dynamics and fits the total energy of the NVE run that follows; the drift is reported in kT per
ns per degree of freedom, comparable between Systems of different sizes.

Units: time steps in fs (or ``openmm.unit`` times), temperature in K, energies in kJ/mol.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import openmm
from openmm import unit

from .._util import as_quantity
from ..dynamics.simulation import degrees_of_freedom
from ..errors import SimulationError
from ..forces import for_platform

KB_KJ_PER_MOL_K = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


@dataclass
class DriftResult:
    """Linear fit of the total energy of an NVE run.

    Attributes
    ----------
    drift : float
        Slope in kT per ns per degree of freedom.
    fluctuation : float
        RMS of the residual about the fit, kJ/mol.
    n_dof : int
        Degrees of freedom of the System.
    """

    drift: float
    fluctuation: float
    n_dof: int


def tighten_pme(system: openmm.System, tolerance: float = 1e-5) -> openmm.System:
    """Set every NonbondedForce's Ewald error tolerance (in place; returns ``system``).

    At OpenMM's default 5e-4 the PME discretisation alone drifts by ~0.08 kT/ns/dof on a small
    water box, which would hide what a drift measurement is for.
    """
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setEwaldErrorTolerance(tolerance)
    return system


def velocity_verlet(timestep, constraint_tolerance: float = 1e-8) -> openmm.CustomIntegrator:
    """Velocity Verlet with RATTLE-style constraint handling (OpenMM's CustomIntegrator recipe)."""
    integrator = openmm.CustomIntegrator(as_quantity(timestep, unit.femtosecond))
    integrator.addPerDofVariable("x1", 0)
    integrator.addUpdateContextState()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m")
    integrator.addComputePerDof("x", "x+dt*v")
    integrator.addComputePerDof("x1", "x")
    integrator.addConstrainPositions()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m+(x-x1)/dt")
    integrator.addConstrainVelocities()
    integrator.setConstraintTolerance(constraint_tolerance)
    return integrator


def _context(system, integrator, platform: str, properties: Optional[dict]):
    platform = openmm.Platform.getPlatformByName(platform)
    return openmm.Context(for_platform(system, platform), integrator, platform, properties or {})


def equilibrate(system: openmm.System, positions, box=None, timestep=0.5, temperature=300.0, seed: int = 1,
                steps: int = 200, minimize_system: Optional[openmm.System] = None, platform: str = "CPU",
                properties: Optional[dict] = None) -> openmm.State:
    """Minimise, set velocities and run ``steps`` Langevin steps; return the State (positions, velocities).

    Parameters
    ----------
    minimize_system : openmm.System, optional
        Minimised instead of ``system`` (e.g. the all-MM System): L-BFGS on an ML/MM System needs
        several force evaluations per iteration, on the MM System they are cheap.
    properties : dict, optional
        Platform properties (e.g. one CPU thread and deterministic forces, for a reproducible run).
    """
    temperature = as_quantity(temperature, unit.kelvin)
    if minimize_system is not None:
        context = _context(minimize_system, openmm.VerletIntegrator(0.001), platform, properties)
        if box is not None:
            context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
        positions = context.getState(getPositions=True).getPositions()
        del context
    langevin = openmm.LangevinMiddleIntegrator(temperature, 5 / unit.picosecond,
                                               as_quantity(timestep, unit.femtosecond))
    langevin.setRandomNumberSeed(seed)
    context = _context(system, langevin, platform, properties)
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    if minimize_system is None:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(temperature, seed)
    langevin.step(steps)
    return context.getState(getPositions=True, getVelocities=True)


def measure_drift(system: openmm.System, state: openmm.State, integrator: openmm.Integrator, steps: int = 2000,
                  report: int = 10, temperature=300.0, platform: str = "CPU", properties: Optional[dict] = None,
                  settle: int = 20) -> DriftResult:
    """Run ``steps`` steps of the NVE ``integrator`` from ``state`` and fit the total energy linearly.

    The first ``settle`` steps are run before the first sample: a state handed over by another
    integrator is not one of this integrator's (LangevinMiddleIntegrator's velocities lag the
    positions by half a step, and their kinetic energy is systematically higher than on-step
    velocities'; its constraints were met to a looser tolerance).  The total energy then drops
    once, in the first steps (2.0-2.1 kJ/mol on a 1300-atom NMA box); fitted with the drift, that
    one drop biased 0.5 ps measurements by -0.03 to -0.04 kT/ns/dof.

    Raises
    ------
    SimulationError
        If the total energy becomes NaN or infinite (the run blew up), naming the time.
    """
    temperature = as_quantity(temperature, unit.kelvin).value_in_unit(unit.kelvin)
    timestep_ns = integrator.getStepSize().value_in_unit(unit.nanosecond)
    context = _context(system, integrator, platform, properties)
    context.setState(state)
    integrator.step(settle)
    times, energies = [], []
    for i in range(steps // report + 1):
        s = context.getState(getEnergy=True)
        total = (s.getPotentialEnergy() + s.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole)
        if not np.isfinite(total):
            raise SimulationError(f"the NVE run blew up: the total energy is {total} after "
                                  f"{i * report * timestep_ns * 1e3:.3f} ps")
        times.append(i * report * timestep_ns)
        energies.append(total)
        if i < steps // report:
            integrator.step(report)
    del context
    times, energies = np.array(times), np.array(energies)
    fit = np.polyfit(times, energies, 1)
    n_dof = degrees_of_freedom(system)
    drift = fit[0] / n_dof / (KB_KJ_PER_MOL_K * temperature)
    return DriftResult(float(drift), float(np.std(energies - np.polyval(fit, times))), n_dof)


def nve_drift(system: openmm.System, positions, box=None, steps: int = 2000, timestep=0.5, report: int = 10,
              temperature=300.0, seed: int = 1, platform: str = "CPU",
              properties: Optional[dict] = None) -> DriftResult:
    """Equilibrate briefly with Langevin dynamics (:func:`equilibrate`), then measure the NVE drift of
    velocity Verlet at ``timestep`` over ``steps`` steps (:func:`measure_drift`)."""
    state = equilibrate(system, positions, box, timestep, temperature, seed, platform=platform,
                        properties=properties)
    return measure_drift(system, state, velocity_verlet(timestep), steps, report, temperature, platform=platform,
                         properties=properties)
