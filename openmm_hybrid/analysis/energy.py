"""Potential energy by component (MM bonded, MM nonbonded, ML, ...)."""
import math
from typing import Optional

import openmm
from openmm import unit

from .._util import openmm_errors
from ..embeddings.emle_coupling import emle_energy_components
from ..errors import SimulationError
from ..forces import EMLE_FORCE_NAME, for_platform, is_ml_force, platform_by_name, plugin

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

    Each force is evaluated on its own (a copy of the System gives every force a private
    force group), so the decomposition does not depend on the force groups the System uses.
    On platforms without a native kernel for the ML forces the copy is converted with
    :func:`openmm_hybrid.ml_force.for_platform`.

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

    Raises
    ------
    SimulationError
        A force's energy is not finite (the message names the forces), or a force (an ML
        model) raised an error.
    HybridError
        Unknown platform (the message lists the available ones).
    """
    forces = list(system.getForces())
    if len(forces) > 32:
        raise ValueError("energy decomposition supports at most 32 forces")
    work = openmm.XmlSerializer.clone(system)
    for index in range(work.getNumForces()):
        work.getForce(index).setForceGroup(index)
    platform = platform_by_name(platform)
    with openmm_errors("while evaluating the energy"):
        context = openmm.Context(for_platform(work, platform), openmm.VerletIntegrator(0.001), platform)
        if box_vectors is not None:
            context.setPeriodicBoxVectors(*box_vectors)
        context.setPositions(positions)
        for name, value in (parameters or {}).items():
            context.setParameter(name, value)
        kjmol = unit.kilojoule_per_mole
        result = {"total": context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(kjmol)}
        details, bad = [], []
        for index, force in enumerate(forces):
            component = classify_force(force)
            if component is None:
                continue
            energy = context.getState(getEnergy=True, groups={index}).getPotentialEnergy().value_in_unit(kjmol)
            result[component] = result.get(component, 0.0) + energy
            details.append({"name": force.getName(), "class": _class_name(force), "group": force.getForceGroup(),
                            "component": component, "energy": energy})
            if not math.isfinite(energy):
                bad.append(f"force {index} {_class_name(force)} '{force.getName()}' (group {force.getForceGroup()}): "
                           f"{energy}")
            if component == "emle":
                _add_emle_components(result, force, context)
    del context
    parts = [f"{key}: {value}" for key, value in result.items() if not math.isfinite(value)]
    if bad or parts:
        raise SimulationError(f"the potential energy is not finite ({result['total']} kJ/mol): "
                              f"{'; '.join(bad or parts)}; check the structure (overlapping atoms) and the "
                              f"parameters of these forces")
    result["forces"] = details
    return result


def _class_name(force) -> str:
    """The C++ class of a force (forces read back from a System as ``openmm.Force`` included)."""
    if plugin.is_torch_module_force(force):
        return plugin.FORCE_TYPE
    return type(force).__name__


def _add_emle_components(result: dict, force, context) -> None:
    """Add ``emle_static``, ``emle_induced``, ``emle_mm_coulomb`` (scaled like the force) to ``result``."""
    state = context.getState(getPositions=True)
    parts = emle_energy_components(force, state.getPositions(asNumpy=True), state.getPeriodicBoxVectors())
    if parts is None:
        return
    torch_force = plugin.as_torch_module_force(force)
    scale = 1.0
    for i in range(torch_force.getNumGlobalParameters()):  # lambda_interpolate, with interpolation
        scale *= context.getParameter(torch_force.getGlobalParameterName(i))
    for key, value in parts.items():
        result[key] = result.get(key, 0.0) + scale * value
