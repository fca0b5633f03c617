"""Mechanical embedding, through openmm-ml's own implementation.

The ML model replaces the MM terms inside the region: openmm-ml removes the bonded
terms among region atoms, excludes region-region nonbonded pairs (so that with PME
their reciprocal-space part is subtracted too, while the interactions of the region
with its own periodic images keep their MM charges), removes constraints inside the
region, and keeps region-environment Coulomb and Lennard-Jones in MM with the
ligand's force-field parameters.

With ``interpolate=True`` the global parameter ``lambda_interpolate`` (0 = MM, 1 = ML/MM)
is added by :mod:`openmm_hybrid.interpolation` rather than by openmm-ml's ``CustomCVForce``
route (same energies; see that module for why: dE/dlambda, and GPU platforms).

The ML energy itself comes from openmm-hybrid's TorchScript force, reached through
the ``hybrid-ani2x`` potential registered with openmm-ml.
"""
from ..errors import HybridError
from ..interpolation import INTERPOLATION_PARAMETER, add_scaled_region_mm_terms, check_no_region_constraints
from ..openmmml_plugin import ANI2X_POTENTIAL, HybridPotentialImplFactory


def hybrid_potential(model):
    """An openmm-ml ``MLPotential`` wrapping an openmm-hybrid model."""
    from openmmml import MLPotential
    if ANI2X_POTENTIAL not in MLPotential._implFactories:  # not installed with entry points (source tree)
        MLPotential.registerImplFactory(ANI2X_POTENTIAL, HybridPotentialImplFactory())
    return MLPotential(ANI2X_POTENTIAL, model=model)


def create_mechanical_system(topology, system, atoms, model, force_group, interpolate, total_charge=0.0,
                             **options):
    """Mechanically embedded ML/MM System (see module docstring)."""
    emle_options = sorted(k for k in options if k.startswith(("emle_", "embedding_")))
    if emle_options:
        raise HybridError(f"option(s) {', '.join(emle_options)} belong to embedding='electrostatic', not "
                          f"mechanical embedding")
    if interpolate:
        # checked on the MM system before openmm-ml removes the region's constraints
        check_no_region_constraints(system, atoms)
    hybrid = hybrid_potential(model).createMixedSystem(
        topology, system, list(atoms), forceGroup=force_group, interpolate=False,
        embedding="mechanical", totalCharge=total_charge,
        scaleParameter=INTERPOLATION_PARAMETER if interpolate else None, **options)
    if interpolate:
        add_scaled_region_mm_terms(hybrid, system, atoms, INTERPOLATION_PARAMETER,
                                   force_group=min(f.getForceGroup() for f in system.getForces()))
    return hybrid
