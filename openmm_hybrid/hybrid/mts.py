"""Split an ML/MM System into fast and slow force groups for multiple-time-step (MTS) integration.

The ML term costs far more than an MM step, so an MTS integrator (RESPA) evaluates it on an
outer time step and the cheap forces on an inner one.  The split used here puts a cheap
surrogate of the whole Hamiltonian into the fast groups and only a correction into the slow
group (as Tinker-HP's Deep-HP does for ANI-2x/AMOEBA):

    fast (inner, every substep):  E_MM                       the full MM Hamiltonian, including
                                                             the region's own MM bonded and
                                                             nonbonded terms
    slow (outer, once per step):  sum of module forces       E_ML(region) + embedding corrections
                                  - E_MM,internal(region)    (e.g. E_EMLE - E_MM,region-env Coulomb)

so that, at every configuration, fast + slow = the plain ML/MM energy exactly:

    E_MM - E_MM,internal + E_ML (+ correction) = E_MM/MM-env + E_ML (+ correction).

``E_MM,internal`` is exactly what the mechanical embedding removed (bonded terms inside the
region and every region pair's Coulomb + Lennard-Jones), built by
:func:`openmm_hybrid.embeddings.interpolation.add_region_mm_terms`; it is added once with ``+1`` to the
fast group and once with ``-1`` to the slow group.  Every force created by
:func:`openmm_hybrid.forces.create_module_force` (recognised by
:func:`openmm_hybrid.forces.is_ml_force`) is moved to the slow group, so any embedding that is
"the mechanical system plus TorchScript correction forces" is split correctly without
changes here.

With ``lambda_interpolate`` (0 = MM, 1 = ML/MM) the embedding's ``(1 - lambda) E_MM,internal``
terms are replaced by ``+E_MM,internal`` in the fast group and ``-lambda E_MM,internal`` in the
slow group (whose module forces are already scaled by lambda), so

    E(lambda) = E_MM + lambda (E_ML + corrections - E_MM,internal),

the same function as before, and the fast group is the full MM Hamiltonian at every lambda.
"""
from typing import Dict, List

import openmm

from ..embeddings.interpolation import (INTERPOLATION_FORCE_PREFIX, INTERPOLATION_PARAMETER, add_region_mm_terms,
                                        check_no_region_constraints)
from ..errors import HybridError
from ..forces import is_ml_force

FAST_REGION_FORCE_PREFIX = "MTSFastRegionMM"  # + E_MM,internal(region), in the fast group
SLOW_REGION_FORCE_PREFIX = "MTSSlowRegionMMCorrection"  # - (lambda) E_MM,internal(region), in the slow group
SCHEME = ("fast groups: the full MM Hamiltonian (including the ML region's own MM bonded and nonbonded terms); "
          "slow group: every TorchScript module force (ML region, embedding corrections) minus the region's "
          "internal MM energy; fast + slow = the ML/MM energy exactly")
_ENERGY_FREE = (openmm.CMMotionRemover, openmm.MonteCarloBarostat, openmm.MonteCarloAnisotropicBarostat,
                openmm.MonteCarloMembraneBarostat, openmm.MonteCarloFlexibleBarostat)


def make_mts_ready(hybrid: openmm.System, mm_system: openmm.System, atoms, slow_group: int,
                   interpolate: bool = False) -> Dict[str, object]:
    """Rearrange an ML/MM System (in place) into fast and slow force groups (module docstring).

    Parameters
    ----------
    hybrid : openmm.System
        The ML/MM System made from ``mm_system`` by an embedding (modified in place).
    mm_system : openmm.System
        The all-MM System it was made from (the source of the region's MM terms).
    atoms : sequence of int
        The ML region.
    slow_group : int
        Force group (0-31) for the slow (outer) forces; no MM force may use it.
    interpolate : bool
        Whether ``hybrid`` has ``lambda_interpolate``.

    Returns
    -------
    dict
        ``{"fast": [groups...], "slow": slow_group}``.
    """
    slow_group = int(slow_group)
    if not 0 <= slow_group <= 31:
        raise HybridError(f"the slow force group must be between 0 and 31, not {slow_group}")
    check_no_region_constraints(
        mm_system, atoms, consequence="the fast (inner) force groups, which must carry the region's full MM "
                                      "Hamiltonian as the cheap surrogate, would have no term for those bonds "
                                      "and the ML region's bonds would only feel forces on the outer time step")
    module_forces = [f for f in hybrid.getForces() if is_ml_force(f)]
    if not module_forces:
        raise HybridError("the System has no ML force to put into the slow force group")
    if interpolate:
        # replaced below by +E_MM,internal (fast) and -lambda E_MM,internal (slow)
        for index in reversed(range(hybrid.getNumForces())):
            if hybrid.getForce(index).getName().startswith(INTERPOLATION_FORCE_PREFIX):
                hybrid.removeForce(index)
    mm_groups = {g for f in hybrid.getForces() if not is_ml_force(f) for g in _groups_of(f)}
    if slow_group in mm_groups:
        raise HybridError(f"force group {slow_group} is used by MM forces (groups {sorted(mm_groups)}); the slow "
                          f"group of a multiple-time-step system must hold only the ML forces and their corrections")
    for force in module_forces:
        force.setForceGroup(slow_group)
    fast_groups = sorted({g for f in hybrid.getForces() if not is_ml_force(f) and not isinstance(f, _ENERGY_FREE)
                          for g in _groups_of(f)})
    if not fast_groups:
        raise HybridError("the System has no MM forces for the fast force groups")
    # with the NonbondedForce's own group, so a one-group MM system stays one group
    fast_group = next((f.getForceGroup() for f in hybrid.getForces() if isinstance(f, openmm.NonbondedForce)),
                      fast_groups[0])
    add_region_mm_terms(hybrid, mm_system, atoms, factor="1", force_group=fast_group,
                        name=FAST_REGION_FORCE_PREFIX, purpose="a multiple-time-step system")
    if interpolate:
        factor, parameters = f"(-{INTERPOLATION_PARAMETER})", (INTERPOLATION_PARAMETER,)
    else:
        factor, parameters = "(-1)", ()
    add_region_mm_terms(hybrid, mm_system, atoms, factor=factor, parameters=parameters, force_group=slow_group,
                        name=SLOW_REGION_FORCE_PREFIX, purpose="a multiple-time-step system")
    return {"fast": fast_groups, "slow": slow_group}


def mts_force_groups(info: dict) -> Dict[str, object]:
    """The fast and slow groups recorded in an ``embed.json`` (``info["force_groups"]``).

    Raises
    ------
    HybridError
        If the System was not embedded with ``mts_ready``.
    """
    groups = (info or {}).get("force_groups") or {}
    if not (info or {}).get("mts_ready") or "fast" not in groups or "slow" not in groups:
        raise HybridError("this System was not embedded for multiple-time-step integration: embed it with "
                          "'openmm-hybrid embed --mts-ready' (create_hybrid_system(..., mts_ready=True)), which "
                          "puts the full MM Hamiltonian, including the ML region's own MM terms, into the fast "
                          "groups; integrating the ML region's bonds on the outer step only would be unstable")
    return {"fast": [int(g) for g in groups["fast"]], "slow": int(groups["slow"])}


def check_mts_groups(system: openmm.System, fast: List[int], slow: int) -> None:
    """Refuse force groups that do not cover the System as an MTS integrator needs.

    Every force with energy must be in a fast group or the slow group (an MTS integrator
    silently ignores forces in other groups), and every module force (ML, embedding
    corrections) must be in the slow group.
    """
    fast = {int(g) for g in fast}
    if int(slow) in fast:
        raise HybridError(f"force group {slow} cannot be both fast and slow")
    for force in system.getForces():
        if is_ml_force(force):
            if force.getForceGroup() != slow:
                raise HybridError(f"the ML force {force.getName()!r} is in group {force.getForceGroup()}, not in "
                                  f"the slow group {slow}")
            continue
        for group in _groups_of(force):
            if not isinstance(force, _ENERGY_FREE) and group not in fast and group != slow:
                raise HybridError(f"force {force.getName()!r} ({type(force).__name__}) is in group {group}, which "
                                  f"is neither fast ({sorted(fast)}) nor slow ({slow}): the integrator would "
                                  f"ignore it")


def _groups_of(force) -> set:
    """Force groups in which ``force`` computes something (a NonbondedForce may compute its
    reciprocal-space part in a group of its own)."""
    groups = {force.getForceGroup()}
    if isinstance(force, openmm.NonbondedForce) and force.getReciprocalSpaceForceGroup() >= 0:
        groups.add(force.getReciprocalSpaceForceGroup())
    return groups
