"""Running a System at thermodynamic states that differ in global parameters, and the
reduced potentials of its configurations at every state.

A *state* is a dict of global parameter values (``{"lambda_interpolate": 0.3}``, or
``{"lambda_electrostatics": 0.0, "lambda_sterics": 0.5}``).  Only forces that depend on
those parameters change between states, so reduced potentials are computed from them
alone: the rest of the energy is the same at every state for a given configuration and
cancels in every estimator (a per-sample constant drops out of MBAR and of work values).
These forces are put in a force group of their own in a private copy of the System.

When a single parameter varies and the energy is linear in it (``lambda_interpolate``
is: ``E = E_0 + lambda (E_ML/MM - E_MM)``, and openmm-hybrid's ML forces request
``dE/dlambda``), one evaluation per configuration gives the energy and ``dE/dlambda``,
from which the energy at every lambda follows exactly; this is checked numerically when
the sampler is created and used only when it holds.

Reproducibility: work is split into *segments* (a block of samples, one switch, ...).
Each segment starts from a saved full state (positions, velocities, box) with its own
integrator seed, after ``Context.reinitialize()``, so no hidden state of the platform
(neighbour lists, random-number streams) carries over from one segment to the next: an
interrupted run resumed from its checkpoint repeats exactly what the uninterrupted run does.
"""
import copy
import math
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import openmm
from openmm import unit

from ..errors import FreeEnergyError, SimulationError
from ..forces import for_platform, plugin
from .settings import SimulationSettings

KJ_PER_KCAL = 4.184


def thermal_energy(temperature_K: float) -> float:
    """k_B T in kJ/mol."""
    return (unit.MOLAR_GAS_CONSTANT_R * temperature_K * unit.kelvin).value_in_unit(unit.kilojoule_per_mole)


@dataclass
class ChainState:
    """Positions (nm), velocities (nm/ps) and box vectors (nm) of one configuration, float64."""

    positions: np.ndarray
    velocities: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None

    def save(self, path) -> None:
        arrays = {"positions": self.positions}
        if self.velocities is not None:
            arrays["velocities"] = self.velocities
        if self.box is not None:
            arrays["box"] = self.box
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "ChainState":
        with np.load(path) as data:
            return cls(data["positions"].copy(), data["velocities"].copy() if "velocities" in data else None,
                       data["box"].copy() if "box" in data else None)


def save_states(states: Sequence[ChainState], path) -> None:
    """Write several states into one ``.npz`` file (samples of a segment)."""
    arrays = {"positions": np.stack([s.positions for s in states])}
    if states and states[0].velocities is not None:
        arrays["velocities"] = np.stack([s.velocities for s in states])
    if states and states[0].box is not None:
        arrays["box"] = np.stack([s.box for s in states])
    np.savez(path, **arrays)


def load_states(path) -> List[ChainState]:
    with np.load(path) as data:
        n = data["positions"].shape[0]
        return [ChainState(data["positions"][i].copy(),
                           data["velocities"][i].copy() if "velocities" in data else None,
                           data["box"][i].copy() if "box" in data else None) for i in range(n)]


BAROSTATS = (openmm.MonteCarloBarostat, openmm.MonteCarloAnisotropicBarostat, openmm.MonteCarloFlexibleBarostat,
             openmm.MonteCarloMembraneBarostat)


def force_global_parameters(force) -> set:
    """Names of the global parameters a force reads (TorchModuleForce and TorchForce included,
    also when read back from a System as a plain ``openmm.Force``)."""
    if plugin.is_torch_module_force(force):
        force = plugin.as_torch_module_force(force)
    elif _openmm_torch_force(force) is not None:
        force = _openmm_torch_force(force)
    if not hasattr(force, "getNumGlobalParameters"):
        return set()
    return {force.getGlobalParameterName(i) for i in range(force.getNumGlobalParameters())}


def system_global_parameters(system: openmm.System) -> set:
    """Every global parameter of a System."""
    names = set()
    for force in system.getForces():
        names |= force_global_parameters(force)
    return names


def isolate_parameter_forces(system: openmm.System, parameters: Sequence[str]) -> set:
    """Make the forces depending on ``parameters`` the only members of their force groups.

    Modifies ``system`` (pass a copy): if a parameter-dependent force shares a group with
    a force that does not depend on them, all dependent forces move to one unused group.

    Returns
    -------
    set of int
        The force groups holding exactly the parameter-dependent forces.
    """
    wanted = set(parameters)
    forces = system.getForces()
    dependent = [f for f in forces if force_global_parameters(f) & wanted]
    if not dependent:
        raise FreeEnergyError(f"no force of the System depends on the global parameter(s) {', '.join(sorted(wanted))}")
    dependent_ids = {id(f) for f in dependent}
    independent_groups = {f.getForceGroup() for f in forces if id(f) not in dependent_ids}
    dependent_groups = {f.getForceGroup() for f in dependent}
    if not dependent_groups & independent_groups:
        return dependent_groups
    used = {f.getForceGroup() for f in forces}
    free = [g for g in range(31, -1, -1) if g not in used]
    if not free:
        raise FreeEnergyError("all 32 force groups are in use; free one so that the lambda-dependent forces can be "
                              "evaluated on their own")
    for force in dependent:
        force.setForceGroup(free[0])
    return {free[0]}


def _openmm_torch_force(force):
    """``force`` as openmm-torch's ``TorchForce`` if it is one (only possible once openmmtorch
    was imported), else None."""
    openmmtorch = sys.modules.get("openmmtorch")
    if openmmtorch is not None and openmmtorch.TorchForce.isinstance(force):
        return openmmtorch.TorchForce.cast(force)
    return None


def copy_system(system: openmm.System) -> openmm.System:
    """An independent copy of ``system`` (``copy.deepcopy``, which clones through XML).

    openmm-hybrid's ``TorchModuleForce`` has an XML proxy, so this works for its Systems;
    openmm-torch 1.5's ``TorchForce`` does not survive the XML round trip with openmm 8.6.1
    (the process crashes), so a System holding one is refused.
    """
    if any(_openmm_torch_force(f) is not None for f in system.getForces()):
        raise FreeEnergyError("the System holds an openmm-torch TorchForce, which cannot be copied with openmm 8.6.1 "
                              "+ openmmtorch 1.5 (its XML reader crashes); create ML forces with "
                              "openmm_hybrid.ml_force.create_module_force (TorchModuleForce) instead")
    return copy.deepcopy(system)


def _check_room_to_shrink(system: openmm.System, margin: float = 0.04) -> None:
    """Refuse NPT for a box within ``margin`` of twice the cutoff: a freshly solvated box is
    below the equilibrium water density and shrinks, and OpenMM stops when the box becomes
    narrower than twice the cutoff."""
    vectors = [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()]
    width = min(vectors[i][i] for i in range(3))  # reduced-form box: the diagonal gives the widths
    cutoffs = [f.getCutoffDistance().value_in_unit(unit.nanometer) for f in system.getForces()
               if isinstance(f, (openmm.NonbondedForce, openmm.CustomNonbondedForce))
               and f.usesPeriodicBoundaryConditions()]
    if cutoffs and width < 2 * max(cutoffs) * (1 + margin):
        raise FreeEnergyError(
            f"the periodic box ({width:.3f} nm wide) leaves no room to shrink under constant pressure: it must "
            f"stay wider than twice the cutoff ({2 * max(cutoffs):.3f} nm), and a freshly solvated box shrinks by "
            f"a few percent as the water reaches its density; build with more padding (or a shorter cutoff), "
            f"or set simulation.pressure_bar: null for constant volume")


def select_platform(name: Optional[str], deterministic: bool):
    """The OpenMM platform (fastest available when ``name`` is None) and its properties."""
    if name is None:
        platforms = [openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms())]
        platform = max(platforms, key=lambda p: p.getSpeed())
    else:
        try:
            platform = openmm.Platform.getPlatformByName(name)
        except openmm.OpenMMException as exc:
            available = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
            raise FreeEnergyError(f"OpenMM platform {name!r} is not available (available: {', '.join(available)})") \
                from exc
    properties = {}
    if deterministic:
        if platform.getName() == "CPU":
            # several CPU threads sum forces in a varying order; one thread does not
            properties = {"Threads": "1", "DeterministicForces": "true"}
        elif platform.getName() in ("CUDA", "OpenCL", "HIP"):
            properties = {"DeterministicForces": "true"}
    return platform, properties


class StateSampler:
    """Langevin dynamics of one System at states given by global parameters.

    Parameters
    ----------
    system : openmm.System
        Not modified (a private copy is made).
    parameters : sequence of str
        The global parameters that define the states.
    simulation : SimulationSettings
    integrator_factory : callable, optional
        ``integrator_factory(system, groups) -> openmm.Integrator`` instead of the
        ``LangevinMiddleIntegrator`` of ``simulation``: called with the private copy of the System
        and the force groups of the parameter-dependent forces (e.g. a RESPA integrator whose slow
        group they are); one step of it is one sampling or switching step.
    """

    def __init__(self, system: openmm.System, parameters: Sequence[str], simulation: SimulationSettings,
                 integrator_factory: Optional[Callable[[openmm.System, set], openmm.Integrator]] = None):
        missing = set(parameters) - system_global_parameters(system)
        if missing:
            raise FreeEnergyError(f"the System has no global parameter {', '.join(sorted(missing))}")
        self.parameters = list(parameters)
        self.system = copy_system(system)
        self.groups = isolate_parameter_forces(self.system, self.parameters)
        self.group_mask = sum(1 << g for g in self.groups)
        self.simulation = simulation
        self.kT = thermal_energy(simulation.temperature_K)
        self.periodic = self.system.usesPeriodicBoundaryConditions()
        self.barostats = [f for f in self.system.getForces() if isinstance(f, BAROSTATS)]
        if self.periodic and simulation.pressure_bar is not None:
            _check_room_to_shrink(self.system)
        if self.periodic and simulation.pressure_bar is not None and not self.barostats:
            barostat = openmm.MonteCarloBarostat(simulation.pressure_bar * unit.bar,
                                                 simulation.temperature_K * unit.kelvin,
                                                 simulation.barostat_interval)
            self.system.addForce(barostat)
            self.barostats = [barostat]
        if integrator_factory is not None:
            self.integrator = integrator_factory(self.system, set(self.groups))
        else:
            self.integrator = openmm.LangevinMiddleIntegrator(simulation.temperature_K * unit.kelvin,
                                                              simulation.friction_per_ps / unit.picosecond,
                                                              simulation.timestep_fs * unit.femtosecond)
        self.platform, self.properties = select_platform(simulation.platform, simulation.deterministic)
        # GPU platforms run TorchModuleForces as openmm-torch TorchForces (same module, groups,
        # parameters); the Context keeps reading this System (reinitialize), so it is kept
        self.context_system = for_platform(self.system, self.platform)
        self.barostats = [f for f in self.context_system.getForces() if isinstance(f, BAROSTATS)]
        self.context = openmm.Context(self.context_system, self.integrator, self.platform, self.properties)
        self.linear_parameter: Optional[str] = None
        self.linearity: dict = {}
        self.step_count = 0

    @property
    def description(self) -> dict:
        return {"platform": self.platform.getName(), "platform_properties": dict(self.properties),
                "ensemble": "NPT (Monte Carlo barostat)" if self.barostats else "NVT",
                "parameter_force_groups": sorted(self.groups),
                "energy_evaluation": (f"energy and d/d{self.linear_parameter} once per configuration, linear in "
                                      f"{self.linear_parameter} (checked)") if self.linear_parameter else
                "explicit evaluation at every state",
                "linearity_check": self.linearity}

    # ---- segments -------------------------------------------------------------------------

    def start_segment(self, state: ChainState, seed: int, values: Dict[str, float]) -> None:
        """Reset the Context and load ``state``; the integrator draws from ``seed``.

        Velocities missing from ``state`` are drawn from the Maxwell-Boltzmann distribution
        with the same seed.
        """
        self.integrator.setRandomNumberSeed(int(seed))
        for barostat in self.barostats:
            barostat.setRandomNumberSeed(int(seed))
        self.context.reinitialize(preserveState=False)
        if state.box is not None:
            self.context.setPeriodicBoxVectors(*[openmm.Vec3(*row) for row in state.box])
        self.context.setPositions(state.positions)
        for name, value in values.items():
            self.context.setParameter(name, float(value))
        if state.velocities is not None:
            self.context.setVelocities(state.velocities)
        else:
            self.context.setVelocitiesToTemperature(self.simulation.temperature_K * unit.kelvin, int(seed))

    def load_state(self, state: ChainState, values: Dict[str, float]) -> None:
        """Load ``state`` (with velocities) into the running Context, without a reset: for
        consecutive switches inside one segment (the segment's operations are the same in an
        interrupted and an uninterrupted run, so they stay reproducible)."""
        if state.box is not None:
            self.context.setPeriodicBoxVectors(*[openmm.Vec3(*row) for row in state.box])
        self.context.setPositions(state.positions)
        self.set_state_values(values)
        self.context.setVelocities(state.velocities)

    def set_state_values(self, values: Dict[str, float]) -> None:
        for name, value in values.items():
            self.context.setParameter(name, float(value))

    def minimize(self, max_iterations: int) -> None:
        openmm.LocalEnergyMinimizer.minimize(self.context, 10.0, int(max_iterations))
        energy = self.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            raise SimulationError(f"energy minimisation produced a non-finite energy ({energy} kJ/mol)")
        # the minimiser leaves velocities as they were; positions changed
        self.context.setVelocitiesToTemperature(self.simulation.temperature_K * unit.kelvin,
                                                self.integrator.getRandomNumberSeed())

    def step(self, n: int, where: str = "") -> None:
        if n <= 0:
            return
        try:
            self.integrator.step(int(n))
        except openmm.OpenMMException as exc:
            if "nan" in str(exc).lower():
                raise SimulationError(f"the simulation blew up{' in ' + where if where else ''} (OpenMM: {exc}); "
                                      f"use a smaller time step or check the starting structure") from exc
            raise
        self.step_count += int(n)

    def chain_state(self) -> ChainState:
        state = self.context.getState(getPositions=True, getVelocities=True)
        box = np.array(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)) \
            if self.periodic else None
        return ChainState(np.array(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=float),
                          np.array(state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond),
                                   dtype=float), box)

    # ---- energies -------------------------------------------------------------------------

    def dependent_energy(self) -> float:
        """Energy of the parameter-dependent forces at the current state, in kJ/mol."""
        energy = self.context.getState(getEnergy=True, groups=self.group_mask).getPotentialEnergy() \
            .value_in_unit(unit.kilojoule_per_mole)
        if not math.isfinite(energy):
            raise SimulationError(f"the lambda-dependent energy is not finite ({energy} kJ/mol)")
        return energy

    def energy_and_derivative(self, parameter: str):
        """Energy of the dependent forces and its derivative with respect to ``parameter`` (kJ/mol)."""
        state = self.context.getState(getEnergy=True, getParameterDerivatives=True, groups=self.group_mask)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        derivative = state.getEnergyParameterDerivatives()
        value = derivative[parameter] if parameter in derivative else float("nan")
        if not (math.isfinite(energy) and math.isfinite(value)):
            raise SimulationError(f"the lambda-dependent energy or its derivative is not finite "
                                  f"({energy}, {value} kJ/mol)")
        return energy, value

    def check_linearity(self, parameter: str, rtol: float = 1e-8, atol: float = 1e-6) -> bool:
        """Whether the energy is linear in ``parameter`` with ``dE/dparameter`` available.

        At the current configuration: ``E(1/2) = (E(0) + E(1)) / 2`` and ``dE/dp`` at 0 and 1
        equal ``E(1) - E(0)``, within ``atol + rtol * (|E(0)| + |E(1)|)`` kJ/mol (double-precision
        platforms; ``rtol`` is raised to 1e-6 for mixed-precision GPU platforms).  When it
        holds, ``linear_parameter`` is set and used by :meth:`reduced_potentials` and
        :meth:`work_increment`.
        """
        if self.platform.getName() not in ("Reference", "CPU"):
            rtol = max(rtol, 1e-6)
        current = self.context.getParameter(parameter)
        energies, derivatives = {}, {}
        try:
            for value in (0.0, 0.5, 1.0):
                self.context.setParameter(parameter, value)
                energies[value], derivatives[value] = self.energy_and_derivative(parameter)
        finally:
            self.context.setParameter(parameter, current)
        difference = energies[1.0] - energies[0.0]
        tolerance = atol + rtol * (abs(energies[0.0]) + abs(energies[1.0]))
        deviations = {"midpoint": energies[0.5] - 0.5 * (energies[0.0] + energies[1.0]),
                      "derivative_at_0": derivatives[0.0] - difference,
                      "derivative_at_1": derivatives[1.0] - difference}
        linear = all(math.isfinite(d) and abs(d) <= tolerance for d in deviations.values())
        self.linearity = {"parameter": parameter, "linear": linear, "tolerance_kjmol": tolerance,
                          "deviations_kjmol": deviations}
        self.linear_parameter = parameter if linear else None
        return linear

    def reduced_potentials(self, states: Sequence[Dict[str, float]], current: Dict[str, float]) -> np.ndarray:
        """Reduced potentials (kT) of the current configuration at each state.

        Only the parameter-dependent forces count (see the module docstring).  ``current``
        is the state the Context is at; it is restored afterwards.
        """
        p = self.linear_parameter
        if p is not None and all(set(s) == {p} for s in states):
            energy, derivative = self.energy_and_derivative(p)
            return np.array([energy + (s[p] - current[p]) * derivative for s in states]) / self.kT
        values = []
        try:
            for s in states:
                self.set_state_values(s)
                values.append(self.dependent_energy())
        finally:
            self.set_state_values(current)
        return np.array(values) / self.kT

    def work_increment(self, parameter: str, old: float, new: float) -> float:
        """Reduced work (kT) of changing ``parameter`` from ``old`` (the Context's value) to
        ``new`` at fixed configuration; leaves the Context at ``new``."""
        if self.linear_parameter == parameter:
            _, derivative = self.energy_and_derivative(parameter)
            work = (new - old) * derivative
        else:
            before = self.dependent_energy()
            self.context.setParameter(parameter, new)
            work = self.dependent_energy() - before
        self.context.setParameter(parameter, new)
        return work / self.kT
