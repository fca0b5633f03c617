"""Potential energy by component (MM bonded, MM nonbonded, ML, ...)."""
from typing import Optional

import openmm
from openmm import unit

from .ml_force import EMLE_FORCE_NAME, is_ml_force

_BONDED = (openmm.HarmonicBondForce, openmm.HarmonicAngleForce, openmm.PeriodicTorsionForce,
           openmm.RBTorsionForce, openmm.CMAPTorsionForce, openmm.CustomBondForce,
           openmm.CustomAngleForce, openmm.CustomTorsionForce, openmm.CustomCompoundBondForce)
_NONBONDED = (openmm.NonbondedForce, openmm.CustomNonbondedForce, openmm.GBSAOBCForce,
              openmm.CustomGBForce)
_NO_ENERGY = (openmm.CMMotionRemover, openmm.MonteCarloBarostat)


def classify_force(force) -> Optional[str]:
    """Component name of a force: ``ml``, ``emle``, ``mm_bonded``, ``mm_nonbonded``, ``other``; None if
    energy-free."""
    if force.getName() == EMLE_FORCE_NAME:
        return "emle"
    if is_ml_force(force):
        return "ml"
    if isinstance(force, _NO_ENERGY):
        return None
    if isinstance(force, _BONDED):
        return "mm_bonded"
    if isinstance(force, _NONBONDED):
        return "mm_nonbonded"
    return "other"


def energy_decomposition(system: openmm.System, positions, box_vectors=None, platform: str = "CPU",
                         parameters: Optional[dict] = None) -> dict:
    """Potential energy of ``system`` and its components, in kJ/mol.

    Each force is evaluated on its own (forces are given private force groups while the
    Context exists and their groups are restored afterwards; the System is not copied,
    since copying a System with a TorchForce crashes, see
    :mod:`openmm_hybrid.serialization`), so the decomposition does not depend on the
    force groups the System uses.

    Parameters
    ----------
    system : openmm.System
    positions : Quantity
        Positions (nm).
    box_vectors : tuple of Quantity, optional
        Periodic box (nm); defaults to the System's.
    platform : str
        OpenMM platform name.
    parameters : dict, optional
        Context parameters to set (e.g. ``{"lambda_interpolate": 0.5}``).

    Returns
    -------
    dict
        ``total``, one key per component present (``mm_bonded``, ``mm_nonbonded``, ``ml``,
        ``emle``, ``other``; they sum to ``total``), and ``forces``: a list of ``{name, class,
        group, component, energy}``.  With electrostatic embedding, ``emle`` (the EMLEEmbedding
        correction) is broken down further, outside the sum, into ``emle_static``,
        ``emle_induced`` (EMLE's static and induced energies with the MM charges inside the
        embedding cutoff) and ``emle_mm_coulomb`` (the MM Coulomb energy they replace):
        ``emle = lambda * (emle_static + emle_induced - emle_mm_coulomb)``, lambda being
        ``lambda_interpolate`` when present.
    """
    forces = list(system.getForces())
    if len(forces) > 32:
        raise ValueError("energy decomposition supports at most 32 forces")
    groups = [force.getForceGroup() for force in forces]
    kjmol = unit.kilojoule_per_mole
    details = []
    try:
        for index, force in enumerate(forces):
            force.setForceGroup(index)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
        if box_vectors is not None:
            context.setPeriodicBoxVectors(*box_vectors)
        context.setPositions(positions)
        for name, value in (parameters or {}).items():
            context.setParameter(name, value)
        result = {"total": context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(kjmol)}
        for index, force in enumerate(forces):
            component = classify_force(force)
            if component is None:
                continue
            energy = context.getState(getEnergy=True, groups={index}).getPotentialEnergy().value_in_unit(kjmol)
            result[component] = result.get(component, 0.0) + energy
            kind = "TorchForce" if component == "ml" and type(force) is openmm.Force else type(force).__name__
            details.append({"name": force.getName(), "class": kind, "group": groups[index],
                            "component": component, "energy": energy})
            if component == "emle":
                _add_emle_components(result, force, context)
        del context
    finally:
        # the Context reads force groups at every evaluation, so restore them only now
        for force, group in zip(forces, groups):
            force.setForceGroup(group)
    result["forces"] = details
    return result


def _add_emle_components(result: dict, force, context) -> None:
    """Add ``emle_static``, ``emle_induced``, ``emle_mm_coulomb`` (scaled like the force) to ``result``."""
    from .embeddings.electrostatic import emle_energy_components
    state = context.getState(getPositions=True)
    parts = emle_energy_components(force, state.getPositions(asNumpy=True), state.getPeriodicBoxVectors())
    if parts is None:
        return
    import openmmtorch
    torch_force = openmmtorch.TorchForce.cast(force)
    scale = 1.0
    for i in range(torch_force.getNumGlobalParameters()):  # lambda_interpolate, with interpolation
        scale *= context.getParameter(torch_force.getGlobalParameterName(i))
    for key, value in parts.items():
        result[key] = result.get(key, 0.0) + scale * value
