"""Multiple-time-step (RESPA) integrators for MTS-ready ML/MM Systems.

Two schemes, set up from the force groups that :func:`openmm_hybrid.hybrid.create_hybrid_system`
records with ``mts_ready=True`` (``embed.json``: ``force_groups["fast"]``, ``force_groups["slow"]``):

* :func:`create_mts_langevin_integrator`: BAOAB-RESPA Langevin dynamics for production (the
  scheme of ``openmm.MTSLangevinIntegrator``; Lagardere et al., J. Phys. Chem. Lett. 10, 2593
  (2019)).  Per outer step ``dt`` with ``n`` substeps of ``h = dt/n``::

      v += (dt/2) F_slow/m
      n times:  v += (h/2) F_fast/m;  x += (h/2) v;  O(h);  x += (h/2) v;
                constrain x, v += (constraint displacement)/h, constrain v;
                v += (h/2) F_fast/m
      v += (dt/2) F_slow/m;  constrain v

  ``O(h)``: the exact Ornstein-Uhlenbeck velocity update ``v = a v + sqrt(1-a^2) sqrt(kT/m) N(0,1)``,
  ``a = exp(-gamma h)``.
* :func:`create_mts_verlet_integrator`: velocity-Verlet RESPA for NVE validation (the scheme of
  ``openmm.MTSIntegrator``; Tuckerman, Berne, Martyna, J. Chem. Phys. 97, 1990 (1992)): the same
  without ``O``.

Why not OpenMM's own classes: they are these schemes, with the same constraint handling (which
is reused here step for step), but they evaluate the fast forces n + 1 times per outer step
instead of n (counted with a force that counts its own calls; ``benchmarks/bench_mts.py``).  A
``CustomIntegrator`` caches the forces of one force-group set only, so after the slow kick at the
end of a step the fast forces at those same positions are computed again at the start of the next
one.  Here the fast forces are kept in a per-degree-of-freedom variable and reused when the
positions (compared exactly, after ``updateContextState``, so barostat moves, ``setPositions`` and
``setState`` are seen) and the global parameters of the fast forces (known when ``system`` is
given) are unchanged; otherwise they are recomputed.  Per outer step this costs n fast and 1 slow
force evaluation (+1 slow evaluation per ``step()`` call after a State was read), which is what
RESPA promises.  The one change it cannot see is a new periodic box without moved atoms: call
:func:`invalidate_fast_forces` after ``setPeriodicBoxVectors`` alone.  With one substep the
trajectories equal OpenMM's single-step velocity Verlet / BAOAB (tested), and for any ``n`` they
equal OpenMM's ``MTSIntegrator`` / ``MTSLangevinIntegrator`` without noise (tested).

Several fast groups are summed into the stored fast force (one evaluation per group).

Units: ``timestep`` is the OUTER step (fs if a plain number); the inner step is
``timestep / substeps``.  Temperature in K, friction in 1/ps if plain numbers.
"""
import math
from typing import Dict, Iterable, List, Optional

import openmm
from openmm import unit

from .._util import as_quantity
from ..errors import HybridError
from ..hybrid.mts import check_mts_groups

FAST_FORCE_VARIABLE = "f_fast"
VALID_VARIABLE = "fast_forces_valid"


def _check_groups(fast: Iterable[int], slow: int, substeps: int):
    substeps = int(substeps)
    if substeps < 1:
        raise HybridError(f"the number of inner substeps must be at least 1, not {substeps}")
    fast = sorted({int(g) for g in fast})
    if not fast:
        raise HybridError("no fast force groups given")
    for group in fast + [int(slow)]:
        if not 0 <= group <= 31:
            raise HybridError(f"force groups must be between 0 and 31, not {group}")
    if int(slow) in fast:
        raise HybridError(f"force group {slow} cannot be both fast and slow")


def _prepare(force_groups: Dict[str, object], substeps: int, system: Optional[openmm.System]):
    fast, slow = force_groups["fast"], force_groups["slow"]
    _check_groups(fast, slow, substeps)
    if system is not None:
        check_mts_groups(system, fast, slow)
    return sorted({int(g) for g in fast}), int(slow), int(substeps)


def _fast_parameters(system: Optional[openmm.System], fast: List[int]) -> List[str]:
    """Global (context) parameters that forces in the fast groups depend on."""
    names = set()
    for force in (system.getForces() if system is not None else []):
        if force.getForceGroup() in fast and hasattr(force, "getNumGlobalParameters"):
            names.update(force.getGlobalParameterName(i) for i in range(force.getNumGlobalParameters()))
    return sorted(names)


class RESPAIntegrator(openmm.CustomIntegrator):
    """Two-level RESPA ``CustomIntegrator`` (velocity Verlet, or BAOAB with ``temperature``).

    Use :func:`create_mts_langevin_integrator` / :func:`create_mts_verlet_integrator`; see the
    module docstring for the scheme and the reuse of the fast forces.
    """

    def __init__(self, timestep, substeps: int, fast: List[int], slow: int, temperature=None, friction=None,
                 fast_parameters: Iterable[str] = ()):
        dt = as_quantity(timestep, unit.femtosecond)
        super().__init__(dt)
        self.substeps, self.fast_groups, self.slow_group = substeps, list(fast), slow
        h = f"(dt/{substeps})"
        langevin = temperature is not None
        if langevin:
            gamma = as_quantity(friction, unit.picosecond ** -1).value_in_unit(unit.picosecond ** -1)
            inner_ps = dt.value_in_unit(unit.picosecond) / substeps
            a = math.exp(-gamma * inner_ps)
            self.addGlobalVariable("a", a)
            self.addGlobalVariable("b", math.sqrt(1 - a * a))
            self.addGlobalVariable("kT", unit.MOLAR_GAS_CONSTANT_R * as_quantity(temperature, unit.kelvin))
        self.addGlobalVariable(VALID_VARIABLE, 0)
        self.addGlobalVariable("moved", 0)
        parameters = list(fast_parameters)
        for k, name in enumerate(parameters):
            self.addGlobalVariable(f"saved_parameter{k}", 0)
        self.addPerDofVariable("x1", 0)
        self.addPerDofVariable("x_saved", 0)
        self.addPerDofVariable(FAST_FORCE_VARIABLE, 0)
        self.addUpdateContextState()
        # reuse the fast forces stored at the end of the last step if nothing they depend on changed
        self.addComputeSum("moved", "(x-x_saved)^2")
        changed = "moved" + "".join(f"+({name}-saved_parameter{k})^2" for k, name in enumerate(parameters))
        self.addComputeGlobal("moved", f"{changed}+1-{VALID_VARIABLE}")
        self.beginIfBlock("moved > 0")
        self._compute_fast_forces()
        self.endBlock()
        self.addComputePerDof("v", f"v+0.5*dt*f{slow}/m")
        for _ in range(substeps):
            self.addComputePerDof("v", f"v+0.5*{h}*{FAST_FORCE_VARIABLE}/m")
            if langevin:
                self.addComputePerDof("x", f"x+0.5*{h}*v")
                self.addComputePerDof("v", "a*v+b*sqrt(kT/m)*gaussian")
                self.addComputePerDof("x", f"x+0.5*{h}*v")
            else:
                self.addComputePerDof("x", f"x+{h}*v")
            self.addComputePerDof("x1", "x")
            self.addConstrainPositions()
            self.addComputePerDof("v", f"v+(x-x1)/{h}")
            self.addConstrainVelocities()
            self._compute_fast_forces()
            self.addComputePerDof("v", f"v+0.5*{h}*{FAST_FORCE_VARIABLE}/m")
        self.addComputePerDof("x_saved", "x")
        for k, name in enumerate(parameters):
            self.addComputeGlobal(f"saved_parameter{k}", name)
        self.addComputeGlobal(VALID_VARIABLE, "1")
        # the slow force last, so that OpenMM's force cache holds it for the next step's first kick
        self.addComputePerDof("v", f"v+0.5*dt*f{slow}/m")
        self.addConstrainVelocities()

    def _compute_fast_forces(self):
        for k, group in enumerate(self.fast_groups):
            previous = f"{FAST_FORCE_VARIABLE}+" if k else ""
            self.addComputePerDof(FAST_FORCE_VARIABLE, f"{previous}f{group}")


def invalidate_fast_forces(integrator: openmm.CustomIntegrator) -> None:
    """Make a :class:`RESPAIntegrator` recompute its stored fast forces at the next step (needed
    only after changing the periodic box without moving the atoms)."""
    integrator.setGlobalVariableByName(VALID_VARIABLE, 0)


def create_mts_langevin_integrator(timestep, substeps: int, force_groups: Dict[str, object],
                                   temperature=300 * unit.kelvin, friction=1.0 / unit.picosecond,
                                   system: Optional[openmm.System] = None, seed: Optional[int] = None,
                                   constraint_tolerance: Optional[float] = None) -> RESPAIntegrator:
    """BAOAB-RESPA Langevin integrator (the scheme of ``openmm.MTSLangevinIntegrator``).

    Parameters
    ----------
    timestep : Quantity or float
        OUTER time step (fs if a plain number); the slow group is evaluated once per step.
    substeps : int
        Inner steps per outer step; the fast groups are evaluated once per inner step, at
        ``timestep / substeps``.
    force_groups : dict
        ``{"fast": [int, ...], "slow": int}`` (``HybridSystem.force_groups`` or ``embed.json``).
    temperature : Quantity or float
        Bath temperature (K).
    friction : Quantity or float
        Friction coefficient (1/ps); the O step acts every inner step.
    system : openmm.System, optional
        If given (recommended), checked: every force with energy is in a fast or the slow group
        and every ML force in the slow group; the global parameters of the fast forces are
        watched so that changing one makes the integrator recompute the stored fast forces.
    seed : int, optional
        Random number seed.
    constraint_tolerance : float, optional
        Relative constraint tolerance (OpenMM default 1e-5).

    Returns
    -------
    RESPAIntegrator
        An ``openmm.CustomIntegrator``.
    """
    fast, slow, substeps = _prepare(force_groups, substeps, system)
    integrator = RESPAIntegrator(timestep, substeps, fast, slow, temperature=temperature, friction=friction,
                                 fast_parameters=_fast_parameters(system, fast))
    if seed is not None:
        integrator.setRandomNumberSeed(int(seed))
    if constraint_tolerance is not None:
        integrator.setConstraintTolerance(float(constraint_tolerance))
    return integrator


def create_mts_verlet_integrator(timestep, substeps: int, force_groups: Dict[str, object],
                                 system: Optional[openmm.System] = None,
                                 constraint_tolerance: Optional[float] = None) -> RESPAIntegrator:
    """Velocity-Verlet RESPA integrator for NVE (the scheme of ``openmm.MTSIntegrator``).

    Parameters are those of :func:`create_mts_langevin_integrator` without the thermostat.

    Returns
    -------
    RESPAIntegrator
        An ``openmm.CustomIntegrator``.
    """
    fast, slow, substeps = _prepare(force_groups, substeps, system)
    integrator = RESPAIntegrator(timestep, substeps, fast, slow, fast_parameters=_fast_parameters(system, fast))
    if constraint_tolerance is not None:
        integrator.setConstraintTolerance(float(constraint_tolerance))
    return integrator


def describe_mts(integrator_name: str, timestep, substeps: int, force_groups: Dict[str, object]) -> dict:
    """JSON-serialisable description of an MTS scheme (for ``run.json``)."""
    outer = as_quantity(timestep, unit.femtosecond).value_in_unit(unit.femtosecond)
    return {"integrator": integrator_name, "scheme": "multiple time step (RESPA)",
            "outer_timestep_fs": outer, "inner_timestep_fs": outer / int(substeps), "substeps": int(substeps),
            "force_groups": {"fast": [int(g) for g in force_groups["fast"]], "slow": int(force_groups["slow"])},
            "slow_evaluations_per_inner_step": 1.0 / int(substeps)}
