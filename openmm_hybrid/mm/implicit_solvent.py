"""Implicit solvent: OBC2 with OpenMM's native ``GBSAOBCForce``, or amber14's ``CustomGBForce`` files.

amber14's ``implicit/obc2.xml`` builds OBC2 as a ``CustomGBForce`` (OpenMM's
``customgbforces.GBSAOBC2Force``): a general expression evaluator, 6 times slower than the
native ``GBSAOBCForce`` for the GB force of T4 lysozyme on the CPU platform
(``benchmarks/results/bench_implicit.md``).  :func:`add_native_obc2` adds the native force with
the *same* per-atom parameters (``GBSAOBC2Force.getStandardParameters``: mbondi2 radii and the
element screening factors, the call ``obc2.xml`` makes), the same dielectrics (solute 1, solvent
78.5), the same ACE surface term (2.25936 kJ/mol/nm^2, i.e. ``28.3919551 = 4 pi 2.25936``, probe
0.14 nm) and the same cutoff handling.

Where the two agree (tests/test_implicit_solvent.py):

- the formulas: OBC type II Born radii (alpha 1, beta 0.8, gamma 4.85, offset 0.009 nm), the
  GB pair and self terms, ACE with ``(r_i + 0.14)^2 (r_i / B_i)^6``; with a cutoff both drop
  pairs beyond it from the Born radii and the pair sum and shift each pair term by
  ``q_i q_j / r_c`` (the self terms are not shifted);
- what differs: the native force uses OpenMM's Coulomb constant 138.935457644 kJ nm/mol/e^2,
  the custom expressions 138.935485 (1.97e-7 relative on the polar energy); the native Born radii add
  Tinker's correction for an atom buried inside another's scaled sphere
  (``r_ij < s_j - rho_i``), which needs near-overlapping atoms; on the CPU platform the native
  force runs in single precision with a tabulated logarithm.

Not equivalent, so kept on ``CustomGBForce`` (``gb_force="custom"``): salt screening (kappa),
the LCPO surface term, and the GBn/GBn2 models (``implicit_solvent="gbn2"``).
"""
from __future__ import annotations

import openmm
import openmm.app as app
from openmm import unit
from openmm.app.internal.customgbforces import GBSAOBC2Force

from ..errors import HybridError

__all__ = ["IMPLICIT_MODELS", "GB_FORCES", "implicit_forcefield_files", "add_native_obc2", "describe_implicit"]

#: Implicit-solvent models and their amber14 force-field files (CustomGBForce).
IMPLICIT_MODELS = {"obc2": "implicit/obc2.xml", "gbn2": "implicit/gbn2.xml"}
#: How OBC2 is computed: OpenMM's native GBSAOBCForce, or the CustomGBForce of ``implicit/obc2.xml``.
GB_FORCES = ("native", "custom")
SOLUTE_DIELECTRIC = 1.0
SOLVENT_DIELECTRIC = 78.5  # customgbforces' default, which implicit/obc2.xml uses
ACE_SURFACE_ENERGY = 2.25936  # kJ/mol/nm^2: customgbforces' 28.3919551 / (4 pi)


def check_implicit(model: str, gb_force: str) -> None:
    """Refuse an unknown model or force kind, or a native force for a model it cannot express."""
    if model not in IMPLICIT_MODELS:
        raise HybridError(f"implicit solvent model must be one of {', '.join(IMPLICIT_MODELS)}, not {model!r}")
    if gb_force not in GB_FORCES:
        raise HybridError(f"gb_force must be one of {', '.join(GB_FORCES)}, not {gb_force!r}")
    if gb_force == "native" and model != "obc2":
        raise HybridError(f"OpenMM's native GBSAOBCForce computes OBC2 only; {model} needs gb_force='custom'")


def implicit_forcefield_files(model: str, gb_force: str) -> tuple:
    """Force-field files that add the implicit solvent in ``createSystem`` (none for the native force)."""
    check_implicit(model, gb_force)
    return () if gb_force == "native" else (IMPLICIT_MODELS[model],)


def add_native_obc2(system: openmm.System, topology, nonbonded_method=app.NoCutoff, cutoff=None) -> openmm.GBSAOBCForce:
    """Add OBC2 implicit solvent as a native ``GBSAOBCForce`` to ``system`` (made without an implicit file).

    Parameters
    ----------
    system : openmm.System
        Holds one ``NonbondedForce``, whose charges the GB force takes.
    topology : openmm.app.Topology
        Gives the radii and screening factors (``GBSAOBC2Force.getStandardParameters``).
    nonbonded_method : NoCutoff or CutoffNonPeriodic or CutoffPeriodic
    cutoff : Quantity or float, optional
        nm; with a cutoff method.

    Returns
    -------
    openmm.GBSAOBCForce
        The force added.
    """
    nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if len(nonbonded) != 1:
        raise HybridError("implicit solvent needs the System to hold exactly one NonbondedForce")
    nonbonded = nonbonded[0]
    # As implicit/obc2.xml does: the reaction field inside the cutoff is the GB term's business.
    nonbonded.setReactionFieldDielectric(1.0)
    force = openmm.GBSAOBCForce()
    force.setSoluteDielectric(SOLUTE_DIELECTRIC)
    force.setSolventDielectric(SOLVENT_DIELECTRIC)
    force.setSurfaceAreaEnergy(ACE_SURFACE_ENERGY * unit.kilojoule_per_mole / unit.nanometer ** 2)
    for i, (radius, screen) in enumerate(GBSAOBC2Force.getStandardParameters(topology)):
        charge = nonbonded.getParticleParameters(i)[0]
        force.addParticle(charge, float(radius), float(screen))
    methods = {app.NoCutoff: openmm.GBSAOBCForce.NoCutoff, app.CutoffNonPeriodic: openmm.GBSAOBCForce.CutoffNonPeriodic,
               app.CutoffPeriodic: openmm.GBSAOBCForce.CutoffPeriodic}
    if nonbonded_method not in methods:
        raise HybridError("implicit solvent needs NoCutoff, CutoffNonPeriodic or CutoffPeriodic")
    force.setNonbondedMethod(methods[nonbonded_method])
    if nonbonded_method != app.NoCutoff:
        force.setCutoffDistance(cutoff)
    system.addForce(force)
    return force


def describe_implicit(model: str, gb_force: str) -> str:
    """How the implicit solvent was made, for ``build.json``."""
    if gb_force == "native":
        return "OBC2: OpenMM GBSAOBCForce (amber14 implicit/obc2.xml radii and screening, ACE surface term)"
    return f"{model.upper()}: amber14 {IMPLICIT_MODELS[model]} (CustomGBForce)"
