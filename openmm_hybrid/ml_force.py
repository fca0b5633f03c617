"""The OpenMM Force that evaluates an ML model on the ML region.

This is the one place that knows how the model reaches OpenMM.  Today it is
openmm-torch's ``TorchForce`` running a TorchScript module inside the OpenMM
context (no Python callback per step, unlike openmm-ml 1.8's ``PythonForce``);
a compiled force from ``plugin/`` can replace it by changing
:func:`create_module_force` alone.
"""
from typing import List, Optional, Sequence

import torch

from .models.base import MLModel

ML_FORCE_NAME = "MLPotential"
EMLE_FORCE_NAME = "EMLEEmbedding"  # the electrostatic-embedding (EMLE) coupling correction
# Names of the forces made by create_module_force (the ML force and embedding couplings).
# A module that creates module forces under another name adds it here at import time, so that
# forces read back from a system.xml are recognised too.
MODULE_FORCE_NAMES = {ML_FORCE_NAME, EMLE_FORCE_NAME}


class MLRegionEnergy(torch.nn.Module):
    """Picks the ML region out of the System's positions and evaluates the model.

    Input positions are OpenMM's, in nm, for all particles; in periodic systems the
    region is made whole by minimum-image displacements from its first atom (the
    region must be smaller than half the box, which the embedding checks), so the
    energy does not depend on where the region sits relative to the box edges.
    Energy is returned in kJ/mol.  With a scaling global parameter (``lambda_interpolate``)
    OpenMM passes its value as the last argument and the energy is multiplied by it; for a
    non-periodic System it then arrives in the ``boxvectors`` slot, which is why both are
    handled by position.
    """

    periodic: bool
    scaled: bool

    def __init__(self, model: torch.nn.Module, atoms: Sequence[int], atomic_numbers: Sequence[int],
                 total_charge: float, dtype: torch.dtype, periodic: bool, scaled: bool = False):
        super().__init__()
        self.model = model
        self.register_buffer("atoms", torch.tensor(list(atoms), dtype=torch.int64))
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.int64))
        self.register_buffer("total_charge", torch.tensor(float(total_charge), dtype=dtype))
        self.periodic = periodic
        self.scaled = scaled

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.scaled and not self.periodic and scale is None:
            scale = boxvectors  # non-periodic: the parameter is the second argument
            boxvectors = None
        dtype = self.total_charge.dtype
        pos = positions.index_select(0, self.atoms).to(dtype)
        if boxvectors is not None and self.periodic:
            box = boxvectors.to(dtype)
            d = pos - pos[0]
            d = d - torch.outer(torch.round(d[:, 2] / box[2, 2]), box[2])
            d = d - torch.outer(torch.round(d[:, 1] / box[1, 1]), box[1])
            d = d - torch.outer(torch.round(d[:, 0] / box[0, 0]), box[0])
            pos = pos[0] + d
        energy = self.model(self.atomic_numbers, pos, self.total_charge).to(torch.float64).reshape(())
        if scale is not None:
            energy = energy * scale.to(torch.float64).reshape(())
        return energy


def _copy_torch_force(force, memo=None):
    """``copy.deepcopy`` for TorchForce without OpenMM's XML round trip (which crashes, see
    :mod:`openmm_hybrid.serialization`); openmm-ml's interpolation deep-copies ML forces."""
    import openmmtorch
    copy = openmmtorch.TorchForce(force.getModule(), force.getProperties())
    copy.setForceGroup(force.getForceGroup())
    copy.setName(force.getName())
    copy.setUsesPeriodicBoundaryConditions(force.usesPeriodicBoundaryConditions())
    copy.setOutputsForces(force.getOutputsForces())
    for i in range(force.getNumGlobalParameters()):
        copy.addGlobalParameter(force.getGlobalParameterName(i), force.getGlobalParameterDefaultValue(i))
    for i in range(force.getNumEnergyParameterDerivatives()):
        copy.addEnergyParameterDerivative(force.getEnergyParameterDerivativeName(i))
    return copy


def install_torch_force_copy() -> None:
    """Make ``copy.deepcopy`` of a TorchForce safe (idempotent).

    OpenMM's ``Force.__deepcopy__`` clones through XML, which crashes for TorchForce
    (see :mod:`openmm_hybrid.serialization`); forces read back from a System are plain
    ``openmm.Force`` wrappers, so the patch sits on ``openmm.Force`` and only diverts
    TorchForces, leaving every other force type to OpenMM's own copy.
    """
    import openmm
    import openmmtorch
    original = openmm.Force.__deepcopy__
    if getattr(original, "_openmm_hybrid_safe", False):
        return

    def __deepcopy__(self, memo=None):
        if openmmtorch.TorchForce.isinstance(self):
            return _copy_torch_force(openmmtorch.TorchForce.cast(self), memo)
        return original(self, memo)

    __deepcopy__._openmm_hybrid_safe = True
    openmm.Force.__deepcopy__ = __deepcopy__
    openmmtorch.TorchForce.__deepcopy__ = __deepcopy__


def create_region_module(model: MLModel, atoms: Sequence[int], atomic_numbers: Sequence[int],
                         total_charge: float = 0.0, periodic: bool = False,
                         scaled: bool = False) -> torch.jit.ScriptModule:
    """TorchScript module computing the region's ML energy from all System positions.

    A model exposing ``specialize(atomic_numbers)`` (ANI-2x) is first reduced to what the
    region's elements need.
    """
    module = model.module
    if hasattr(module, "specialize") and not isinstance(module, torch.jit.ScriptModule):
        module = module.specialize(atomic_numbers)
    return torch.jit.script(MLRegionEnergy(module, atoms, atomic_numbers, total_charge, model.dtype, periodic,
                                           scaled))


def create_module_force(module: torch.jit.ScriptModule, periodic: bool = False, force_group: int = 0,
                        name: str = ML_FORCE_NAME, scale_parameter: Optional[str] = None):
    """Create the OpenMM Force that evaluates a TorchScript energy module inside OpenMM.

    This is the single place that decides which OpenMM force type runs openmm-hybrid's
    TorchScript modules (the ML model, electrostatic-embedding couplings, ...).

    Parameters
    ----------
    module : torch.jit.ScriptModule
        ``forward(positions, boxvectors=None, scale=None) -> energy``: positions of all
        particles in nm (float64, shape (N, 3)), box vectors in nm (3, 3) for periodic
        Systems, the value of ``scale_parameter`` if one is given (in the box slot for a
        non-periodic System, see :class:`MLRegionEnergy`); returns a 0-d energy in kJ/mol.
    periodic : bool
        Whether the force receives box vectors.
    force_group : int
        Force group of the new force.
    name : str
        Force name; it tells what the force computes (``MLPotential`` for the ML model).
        It must be in ``MODULE_FORCE_NAMES``.
    scale_parameter : str, optional
        Name of a global parameter (default value 1) passed to the module, e.g.
        ``"lambda_interpolate"``; its energy derivative is also requested.

    Returns
    -------
    openmm.Force
        Currently an ``openmmtorch.TorchForce``.
    """
    import openmmtorch  # torch must be imported first: it loads the CUDA libraries TorchForce links to

    if name not in MODULE_FORCE_NAMES:
        raise ValueError(f"module force name {name!r} is not registered in MODULE_FORCE_NAMES")
    install_torch_force_copy()
    force = openmmtorch.TorchForce(module)
    if scale_parameter is not None:
        force.addGlobalParameter(scale_parameter, 1.0)
        force.addEnergyParameterDerivative(scale_parameter)
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setForceGroup(int(force_group))
    force.setName(name)
    return force


def create_ml_force(model: MLModel, atoms: Sequence[int], atomic_numbers: Sequence[int],
                    total_charge: float = 0.0, periodic: bool = False, force_group: int = 0,
                    scale_parameter: Optional[str] = None):
    """Create the OpenMM Force for the ML energy of ``atoms``.

    Parameters
    ----------
    model : MLModel
        The loaded model.
    atoms : sequence of int
        System indices of the ML region, in the order the model receives them.
    atomic_numbers : sequence of int
        Elements of those atoms.
    total_charge : float
        Net charge of the region, in e.
    periodic : bool
        Whether the System is periodic (the force then receives box vectors).
    force_group : int
        Force group of the new force.
    scale_parameter : str, optional
        Name of a global parameter (default value 1) that multiplies the ML energy, e.g.
        ``"lambda_interpolate"``; its energy derivative is also requested, so
        ``dE/dlambda`` is available from the State.

    Returns
    -------
    openmm.Force
        See :func:`create_module_force`.
    """
    module = create_region_module(model, atoms, atomic_numbers, total_charge, periodic,
                                  scaled=scale_parameter is not None)
    return create_module_force(module, periodic=periodic, force_group=force_group, name=ML_FORCE_NAME,
                               scale_parameter=scale_parameter)


def is_ml_force(force) -> bool:
    """True for a force evaluating a TorchScript module (the ML model or an embedding coupling
    made by :func:`create_module_force`), or a CustomCVForce wrapping one."""
    import openmm
    import openmmtorch
    if force.getName() in MODULE_FORCE_NAMES or openmmtorch.TorchForce.isinstance(force):
        return True
    if isinstance(force, openmm.CustomCVForce):
        return any(is_ml_force(force.getCollectiveVariable(i)) for i in range(force.getNumCollectiveVariables()))
    return False
