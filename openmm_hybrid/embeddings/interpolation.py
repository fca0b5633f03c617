"""MM <-> ML/MM interpolation with a ``lambda_interpolate`` global parameter.

openmm-ml's semantics, E(lambda) = MM for lambda = 0 and ML/MM for lambda = 1, linear in
between:

    E(lambda) = E_ML/MM-without-region-internal-MM + lambda * E_ML(region)
                + (1 - lambda) * E_MM,internal(region)

openmm-ml builds this by putting the ML force and the MM terms into a ``CustomCVForce``.
That route works with openmm-hybrid's ``TorchModuleForce`` (the compiled plugin clones
through XML, as a CustomCVForce needs; ``tests/test_plugin.py`` checks that it gives the
same energies), but openmm-hybrid builds the interpolation without a CustomCVForce because
(1) ``dE/dlambda`` is then available from the State (openmm-ml's CustomCVForce does not
request it), and (2) on CUDA/OpenCL the ML force must become openmm-torch's ``TorchForce``
(:func:`openmm_hybrid.ml_force.for_platform`), which a CustomCVForce cannot hold with the
pinned stack (openmm-torch 1.5's XML reader crashes under openmm 8.6.1).  Instead the ML
force itself takes ``lambda_interpolate`` as a global parameter (with its energy
derivative), and the MM region-internal terms removed by the mechanical embedding are put
back here, each multiplied by ``(1 - lambda_interpolate)``: bonded terms whose atoms all lie in the region,
and every region-region nonbonded pair as the MM Coulomb + Lennard-Jones energy that the
exclusion removed.  For PME/Ewald that removed energy is exactly ``q_i q_j / r`` (the
reciprocal-space parts cancel between the two systems), plus Lennard-Jones inside the
cutoff (with the MM switching function, if any); exception pairs (1-4) use their
exception parameters and no cutoff, as OpenMM does.
"""
import itertools
import math

import openmm
from openmm import unit

from ..errors import HybridError

INTERPOLATION_PARAMETER = "lambda_interpolate"
# name prefix of the (1 - lambda) region-internal MM forces
INTERPOLATION_FORCE_PREFIX = "MMRegionInterpolation"
ONE_4PI_EPS0 = 138.935456  # kJ/mol nm / e^2, OpenMM's value

_SUPPORTED_METHODS = (openmm.NonbondedForce.NoCutoff, openmm.NonbondedForce.PME, openmm.NonbondedForce.Ewald)


def region_constraints(system: openmm.System, atoms) -> list:
    """Indices of constraints whose two atoms are both in ``atoms``."""
    atom_set = set(atoms)
    return [i for i in range(system.getNumConstraints())
            if {*system.getConstraintParameters(i)[:2]} <= atom_set]


def check_no_region_constraints(system: openmm.System, atoms, consequence: str = None) -> None:
    """Refuse an MM system that constrains bonds inside the region.

    OpenMM drops the MM bond term of a constrained bond, so such a system has no MM
    description of those bonds to put back inside the region.  ``consequence`` says what
    would go wrong (the default names ``lambda_interpolate``'s MM end state).
    """
    constrained = region_constraints(system, atoms)
    if constrained:
        consequence = consequence or "the lambda_interpolate = 0 (MM) end state would have none"
        raise HybridError(
            f"the MM system constrains {len(constrained)} bond(s) inside the ML region; OpenMM drops the MM bond "
            f"terms of constrained bonds, so {consequence}. Build the MM system without constraints inside "
            f"the region (openmm-hybrid's builder does; use --hmr for longer time steps)")


def add_scaled_region_mm_terms(hybrid: openmm.System, mm_system: openmm.System, atoms,
                               parameter: str = "lambda_interpolate", force_group: int = 0) -> list:
    """Add ``(1 - parameter) * E_MM,internal(region)`` to ``hybrid`` (see :func:`add_region_mm_terms`).

    Parameters
    ----------
    hybrid : openmm.System
        The mechanically embedded System (modified in place).
    mm_system : openmm.System
        The all-MM System it was made from.
    atoms : sequence of int
        The ML region.
    parameter : str
        Global parameter name; its default is 1 (ML/MM).
    force_group : int
        Force group of the added forces.
    """
    return add_region_mm_terms(hybrid, mm_system, atoms, factor=f"(1-{parameter})", parameters=(parameter,),
                               force_group=force_group, name=INTERPOLATION_FORCE_PREFIX, purpose="lambda_interpolate")


def add_region_mm_terms(hybrid: openmm.System, mm_system: openmm.System, atoms, factor: str = "1",
                        parameters=(), force_group: int = 0, name: str = "MMRegion",
                        purpose: str = "the region's MM terms") -> list:
    """Add ``factor * E_MM,internal(region)`` to ``hybrid``: the MM energy that the mechanical
    embedding removed from inside the region.

    That is every bonded term whose atoms all lie in the region, and every region-region pair's
    MM Coulomb ``q_i q_j / r`` plus Lennard-Jones inside the cutoff (exceptions with their 1-4
    parameters, never cut off), which is exactly what the embedding's exclusions removed under
    PME, Ewald or no cutoff (the reciprocal-space parts cancel, see the module docstring).

    Parameters
    ----------
    hybrid : openmm.System
        The mechanically embedded System (modified in place).
    mm_system : openmm.System
        The all-MM System it was made from.
    atoms : sequence of int
        The ML region.
    factor : str
        OpenMM expression multiplying every term, e.g. ``"(1-lambda_interpolate)"``, ``"1"``, ``"-1"``.
    parameters : sequence of str
        Global parameters used in ``factor`` (default value 1); their energy derivatives are requested.
    force_group : int
        Force group of the added forces.
    name : str
        Prefix of the added forces' names (``<name>BondForce``, ``<name>AngleForce``,
        ``<name>TorsionForce``, ``<name>NonbondedPairForce``).
    purpose : str
        What the terms are for, used in error messages.

    Returns
    -------
    list of openmm.Force
        The forces added (one per MM force type with terms inside the region).
    """
    atom_set = set(atoms)
    check_no_region_constraints(mm_system, atoms, consequence=f"{purpose} would miss their bond terms")
    periodic = mm_system.usesPeriodicBoundaryConditions()
    added = []
    for force in mm_system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            custom = openmm.CustomBondForce(f"{factor}*0.5*k*(r-r0)^2")
            custom.addPerBondParameter("r0")
            custom.addPerBondParameter("k")
            for i in range(force.getNumBonds()):
                a, b, r0, k = force.getBondParameters(i)
                if a in atom_set and b in atom_set:
                    custom.addBond(a, b, [r0, k])
            added.append((custom, custom.getNumBonds()))
        elif isinstance(force, openmm.HarmonicAngleForce):
            custom = openmm.CustomAngleForce(f"{factor}*0.5*k*(theta-theta0)^2")
            custom.addPerAngleParameter("theta0")
            custom.addPerAngleParameter("k")
            for i in range(force.getNumAngles()):
                a, b, c, theta0, k = force.getAngleParameters(i)
                if {a, b, c} <= atom_set:
                    custom.addAngle(a, b, c, [theta0, k])
            added.append((custom, custom.getNumAngles()))
        elif isinstance(force, openmm.PeriodicTorsionForce):
            custom = openmm.CustomTorsionForce(f"{factor}*k*(1+cos(n*theta-theta0))")
            for parameter_name in ("n", "theta0", "k"):
                custom.addPerTorsionParameter(parameter_name)
            for i in range(force.getNumTorsions()):
                a, b, c, d, n, theta0, k = force.getTorsionParameters(i)
                if {a, b, c, d} <= atom_set:
                    custom.addTorsion(a, b, c, d, [n, theta0, k])
            added.append((custom, custom.getNumTorsions()))
        elif isinstance(force, openmm.NonbondedForce):
            custom = _region_pair_force(force, atoms, factor, periodic, purpose)
            custom.setName("NonbondedPairForce")  # suffix of the name given below
            added.append((custom, custom.getNumBonds()))
        elif isinstance(force, (openmm.CMMotionRemover, openmm.MonteCarloBarostat, openmm.GBSAOBCForce,
                                openmm.CustomGBForce)):
            # GB solvation of the region is a region-environment (solvent) term and stays in MM
            continue
        elif isinstance(force, openmm.CustomNonbondedForce):
            # the embedding excludes region pairs from it, and their energy is not rebuilt here
            raise HybridError(f"{purpose} does not support a CustomNonbondedForce in the MM system "
                              f"({force.getName()!r}): its region-region pairs cannot be restored")
        elif _has_region_term(force, atom_set):
            raise HybridError(f"{purpose} does not support a {type(force).__name__} acting inside the ML region")
    forces = []
    for custom, count in added:
        if count:
            for parameter in parameters:
                custom.addGlobalParameter(parameter, 1.0)
                custom.addEnergyParameterDerivative(parameter)
            custom.setUsesPeriodicBoundaryConditions(periodic)
            custom.setForceGroup(force_group)
            suffix = custom.getName() if custom.getName() == "NonbondedPairForce" else type(custom).__name__[6:]
            custom.setName(f"{name}{suffix}")
            hybrid.addForce(custom)
            forces.append(custom)
    return forces


def _has_region_term(force, atom_set) -> bool:
    for getter, count in (("getBondParameters", "getNumBonds"), ("getAngleParameters", "getNumAngles"),
                          ("getTorsionParameters", "getNumTorsions")):
        if hasattr(force, count):
            for i in range(getattr(force, count)()):
                params = getattr(force, getter)(i)
                indices = [p for p in params if isinstance(p, int)]
                if indices and set(indices) <= atom_set:
                    return True
    return False


def _region_pair_force(force: openmm.NonbondedForce, atoms, factor: str, periodic: bool, purpose: str):
    """CustomBondForce with the MM nonbonded energy of every region-region pair."""
    method = force.getNonbondedMethod()
    if method not in _SUPPORTED_METHODS:
        raise HybridError(f"{purpose} supports NoCutoff, Ewald and PME electrostatics in the MM system")
    cutoff = force.getCutoffDistance().value_in_unit(unit.nanometer)
    lj = "4*eps*((sig/r)^12-(sig/r)^6)"
    if method != openmm.NonbondedForce.NoCutoff:
        if force.getUseSwitchingFunction():
            rs = force.getSwitchingDistance().value_in_unit(unit.nanometer)
            x = f"(r-{rs})/({cutoff}-{rs})"
            lj = f"{lj}*select(step(r-{rs}), 1-10*{x}^3+15*{x}^4-6*{x}^5, 1)"
        # ordinary pairs are cut off like MM direct space; exceptions never are
        lj = f"({lj})*select(cut, step({cutoff}-r), 1)"
    custom = openmm.CustomBondForce(f"{factor}*({ONE_4PI_EPS0}*qq/r + {lj})")
    for name in ("qq", "sig", "eps", "cut"):
        custom.addPerBondParameter(name)
    exceptions = {}
    for i in range(force.getNumExceptions()):
        a, b, qq, sig, eps = force.getExceptionParameters(i)
        exceptions[frozenset((a, b))] = (qq, sig, eps)
    for a, b in itertools.combinations(sorted(atoms), 2):
        if frozenset((a, b)) in exceptions:
            qq, sig, eps = exceptions[frozenset((a, b))]
            qq, sig, eps = (qq.value_in_unit(unit.elementary_charge ** 2), sig.value_in_unit(unit.nanometer),
                            eps.value_in_unit(unit.kilojoule_per_mole))
            cut = 0.0
        else:
            qa, sa, ea = force.getParticleParameters(a)
            qb, sb, eb = force.getParticleParameters(b)
            qq = (qa * qb).value_in_unit(unit.elementary_charge ** 2)
            sig = 0.5 * (sa + sb).value_in_unit(unit.nanometer)
            eps = math.sqrt((ea * eb).value_in_unit(unit.kilojoule_per_mole ** 2))
            cut = 1.0
        if qq != 0.0 or eps != 0.0:
            custom.addBond(a, b, [qq, sig, eps, cut])
    return custom
