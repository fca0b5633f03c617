"""Multiple-time-step (RESPA) integrators for MTS-ready ML/MM Systems.

Two schemes, both OpenMM's own ``CustomIntegrator`` implementations, set up from the force
groups that :func:`openmm_hybrid.hybrid.create_hybrid_system` records with ``mts_ready=True``
(``embed.json``: ``force_groups["fast"]``, ``force_groups["slow"]``):

* :func:`create_mts_langevin_integrator`: BAOAB-RESPA Langevin dynamics for production
  (``openmm.MTSLangevinIntegrator``; Lagardere et al., J. Phys. Chem. Lett. 10, 2593 (2019)).
  Per outer step of length ``dt`` with ``n`` substeps of ``h = dt/n``::

      v += (dt/2) F_slow/m
      n times:  v += (h/2) F_fast/m;  x += (h/2) v;  O(h);  x += (h/2) v;  constrain x (and v);
                v += (h/2) F_fast/m
      v += (dt/2) F_slow/m;  constrain v

  where ``O(h)`` is the exact Ornstein-Uhlenbeck velocity update ``v = a v + sqrt(1-a^2)
  sqrt(kT/m) N(0,1)``, ``a = exp(-gamma h)``.

* :func:`create_mts_verlet_integrator`: velocity-Verlet RESPA (``openmm.MTSIntegrator``;
  Tuckerman, Berne, Martyna, J. Chem. Phys. 97, 1990 (1992)) for NVE validation: the same
  without the ``O`` step.

Why OpenMM's classes rather than a new ``CustomIntegrator``: they are exactly these schemes,
maintained and tested upstream, and they handle constraints the way OpenMM's single-step
integrators do (after each inner drift the positions are constrained and the velocities
corrected by the constraint displacement, then velocity constraints are applied, and once more at
the end of the outer step), so rigid water and X-H constraints outside the ML region work.  What
this module adds is the mapping from openmm-hybrid's fast/slow groups to OpenMM's
``[(group, evaluations per outer step), ...]`` list, checks that every force of the System is
integrated, and a description of the scheme for logs.  Several fast groups become nested levels
with the same number of substeps (a symmetric splitting of the same forces, one extra force
evaluation per substep per extra group); the builder's MM Systems use one group.

Units: ``timestep`` is the OUTER step (fs if a plain number); the inner step is
``timestep / substeps``.  Temperature in K, friction in 1/ps if plain numbers.
"""
from typing import Dict, Iterable, Optional

import openmm
from openmm import unit

from .errors import HybridError
from .mts import check_mts_groups


def _quantity(value, default_unit):
    return value if unit.is_quantity(value) else value * default_unit


def _group_list(fast: Iterable[int], slow: int, substeps: int):
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
    return [(int(slow), 1)] + [(group, substeps) for group in fast]


def _prepare(force_groups: Dict[str, object], substeps: int, system: Optional[openmm.System]):
    fast, slow = force_groups["fast"], force_groups["slow"]
    groups = _group_list(fast, slow, substeps)
    if system is not None:
        check_mts_groups(system, fast, slow)
    return groups


def create_mts_langevin_integrator(timestep, substeps: int, force_groups: Dict[str, object],
                                   temperature=300 * unit.kelvin, friction=1.0 / unit.picosecond,
                                   system: Optional[openmm.System] = None, seed: Optional[int] = None,
                                   constraint_tolerance: Optional[float] = None):
    """BAOAB-RESPA Langevin integrator (``openmm.MTSLangevinIntegrator``).

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
        Friction coefficient (1/ps); the O step uses the inner step.
    system : openmm.System, optional
        If given, checked: every force with energy is in a fast or the slow group and every ML
        force in the slow group.
    seed : int, optional
        Random number seed.
    constraint_tolerance : float, optional
        Relative constraint tolerance (OpenMM default 1e-5).

    Returns
    -------
    openmm.MTSLangevinIntegrator
    """
    groups = _prepare(force_groups, substeps, system)
    integrator = openmm.MTSLangevinIntegrator(_quantity(temperature, unit.kelvin),
                                              _quantity(friction, unit.picosecond ** -1),
                                              _quantity(timestep, unit.femtosecond), groups)
    if seed is not None:
        integrator.setRandomNumberSeed(int(seed))
    if constraint_tolerance is not None:
        integrator.setConstraintTolerance(float(constraint_tolerance))
    return integrator


def create_mts_verlet_integrator(timestep, substeps: int, force_groups: Dict[str, object],
                                 system: Optional[openmm.System] = None,
                                 constraint_tolerance: Optional[float] = None):
    """Velocity-Verlet RESPA integrator for NVE (``openmm.MTSIntegrator``).

    Parameters are those of :func:`create_mts_langevin_integrator` without the thermostat.

    Returns
    -------
    openmm.MTSIntegrator
    """
    groups = _prepare(force_groups, substeps, system)
    integrator = openmm.MTSIntegrator(_quantity(timestep, unit.femtosecond), groups)
    if constraint_tolerance is not None:
        integrator.setConstraintTolerance(float(constraint_tolerance))
    return integrator


def describe_mts(integrator_name: str, timestep, substeps: int, force_groups: Dict[str, object]) -> dict:
    """JSON-serialisable description of an MTS scheme (for ``run.json``)."""
    outer = _quantity(timestep, unit.femtosecond).value_in_unit(unit.femtosecond)
    return {"integrator": integrator_name, "scheme": "multiple time step (RESPA)",
            "outer_timestep_fs": outer, "inner_timestep_fs": outer / int(substeps), "substeps": int(substeps),
            "force_groups": {"fast": [int(g) for g in force_groups["fast"]], "slow": int(force_groups["slow"])},
            "slow_evaluations_per_inner_step": 1.0 / int(substeps)}
