"""Warm-up before production MD: heating with velocity rescaling, so a minimised structure reaches the bath temperature.

Velocities drawn at the bath temperature right after minimisation do not stay there: the
minimised structure sits at the bottom of its wells, so about half of the kinetic energy flows
into potential energy within a few tens of steps (a protein started at 300 K is at 160-270 K
after 20 steps), and the Langevin thermostat takes picoseconds (1/friction) to refill it.

:func:`warm_up` runs ``steps`` steps with the simulation's own integrator in stages of
``interval`` steps.  The stage temperature rises linearly from ``start_temperature`` to the
target over the first ``heating_fraction`` of the steps and then stays at the target; after each
stage the velocities are rescaled so that the instantaneous temperature equals the stage
temperature (velocity-rescaled NVT), and the integrator's bath follows the stage temperature
where it has one (``LangevinMiddleIntegrator``, or a ``CustomIntegrator`` with a ``kT``
variable, as openmm-hybrid's multiple-time-step integrators).  The rescaling removes the
energy deficit within a few stages; the held part lets the potential energy settle at the target.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import openmm
from openmm import unit

from .._util import progress
from ..errors import HybridError, SimulationError
from .stepping import step_or_stop

__all__ = ["warm_up", "instantaneous_temperature", "DEFAULT_WARMUP_STEPS"]

#: Default warm-up length in steps (outer steps with multiple time steps).
DEFAULT_WARMUP_STEPS = 1000
R_KJ = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


def instantaneous_temperature(context: openmm.Context, n_dof: int) -> float:
    """Kinetic temperature (K) of ``context`` for ``n_dof`` degrees of freedom."""
    kinetic = context.getState(getEnergy=True).getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
    return 2.0 * kinetic / (n_dof * R_KJ) if n_dof > 0 else 0.0


def _set_bath(integrator, kelvin: float) -> None:
    if isinstance(integrator, (openmm.LangevinMiddleIntegrator, openmm.LangevinIntegrator)):
        integrator.setTemperature(kelvin * unit.kelvin)
    elif isinstance(integrator, openmm.CustomIntegrator):
        for i in range(integrator.getNumGlobalVariables()):
            if integrator.getGlobalVariableName(i) == "kT":
                integrator.setGlobalVariable(i, R_KJ * kelvin)


def warm_up(simulation, temperature, steps: int, n_dof: int, start_temperature=None, interval: int = 10,
            heating_fraction: float = 0.5, seed: int = 0, check: Optional[Callable[[int], None]] = None) -> dict:
    """Heat ``simulation`` to ``temperature`` over ``steps`` steps with velocity rescaling (module docstring).

    Parameters
    ----------
    simulation : openmm.app.Simulation
        Minimised; its integrator is used (and its bath temperature reset to ``temperature`` at
        the end).
    temperature : Quantity or float
        Target temperature (K).
    steps : int
        Warm-up length (integrator steps); 0 only draws velocities at ``temperature``.
    n_dof : int
        Degrees of freedom (for the instantaneous temperature).
    start_temperature : Quantity or float, optional
        Temperature of the first stage (K); default 10% of the target.
    interval : int
        Steps per stage (between rescalings).
    heating_fraction : float
        Fraction of ``steps`` over which the temperature rises; the rest is held at the target.
    seed : int
        Seed of the initial velocities.
    check : callable, optional
        Called with the number of warm-up steps done after every stage (before the rescaling);
        raises to stop a warm-up that is blowing up (``run_simulation`` checks bond lengths).

    Returns
    -------
    dict
        The settings and the outcome (``final_temperature_k``: instantaneous temperature at the
        end), recorded in ``run.json`` as ``warmup``.
    """
    target = temperature.value_in_unit(unit.kelvin) if unit.is_quantity(temperature) else float(temperature)
    start = 0.1 * target if start_temperature is None else (
        start_temperature.value_in_unit(unit.kelvin) if unit.is_quantity(start_temperature) else float(start_temperature))
    steps, interval = int(steps), int(interval)
    if steps < 0 or interval < 1 or not 0.0 <= heating_fraction <= 1.0 or not 0.0 < start <= target:
        raise HybridError(f"warm-up needs steps >= 0 (got {steps}), interval >= 1 (got {interval}), heating_fraction "
                          f"in [0, 1] (got {heating_fraction}) and 0 < start temperature <= target ({start} K, "
                          f"{target} K)")
    context, integrator = simulation.context, simulation.integrator
    settings = {"steps": steps, "start_temperature_k": start, "target_temperature_k": target, "interval": interval,
                "heating_fraction": heating_fraction, "scheme": "linear heating, then hold; velocities rescaled to "
                                                                 "the stage temperature after every interval"}
    if steps == 0:
        context.setVelocitiesToTemperature(target * unit.kelvin, seed)
        settings["final_temperature_k"] = instantaneous_temperature(context, n_dof)
        return settings
    context.setVelocitiesToTemperature(start * unit.kelvin, seed)
    n_stages = max(1, steps // interval)
    heating_stages = max(1, round(heating_fraction * n_stages))
    done = 0
    progress(f"warm-up: {steps} steps from {start:.0f} K to {target:.0f} K (heating over {heating_fraction:.0%}, "
             f"velocities rescaled every {interval} steps)")
    for stage in range(n_stages):
        stage_t = start + (target - start) * min(1.0, (stage + 1) / heating_stages)
        _set_bath(integrator, stage_t)
        chunk = interval if stage < n_stages - 1 else steps - done
        step_or_stop(simulation, chunk, " of the warm-up")
        done += chunk
        if check is not None:
            check(done)
        current = instantaneous_temperature(context, n_dof)
        if not math.isfinite(current) or current <= 0:
            raise SimulationError(f"energy is not finite at step {done} of the warm-up (temperature {current} K): the "
                                  "simulation blew up; try a smaller time step or check the starting structure")
        velocities = context.getState(getVelocities=True).getVelocities(asNumpy=True)
        context.setVelocities(velocities * math.sqrt(stage_t / current))
    _set_bath(integrator, target)
    settings["final_temperature_k"] = instantaneous_temperature(context, n_dof)
    progress(f"warm-up done: {settings['final_temperature_k']:.1f} K")
    return settings


def check_warmup_settings(steps: Optional[int]) -> int:
    """The warm-up length as an int >= 0."""
    steps = DEFAULT_WARMUP_STEPS if steps is None else int(steps)
    if steps < 0:
        raise HybridError(f"warm-up steps must be >= 0, not {steps}")
    return steps
