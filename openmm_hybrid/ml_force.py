"""The OpenMM Force that evaluates an ML model on the ML region.

This is the one place that knows how the model reaches OpenMM: every TorchScript energy
module becomes a ``TorchModuleForce`` from openmm-hybrid's compiled plugin
(:mod:`openmm_hybrid.plugin`, ``plugin/`` in the source tree), which runs the module with
libtorch inside the OpenMM context (no Python callback per step, unlike openmm-ml 1.8's
``PythonForce``) on the Reference and CPU platforms, and has its own XML serialization.
On other platforms (CUDA, OpenCL) :func:`for_platform` swaps each such force for
openmm-torch's ``TorchForce`` running the same module.
"""
import sys
from typing import List, Optional, Sequence

import torch

from . import plugin
from .errors import HybridError
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
        A ``TorchModuleForce`` (openmm-hybrid's compiled plugin); it runs on the Reference
        and CPU platforms, and on others after :func:`for_platform`.

    Raises
    ------
    PluginError
        If the compiled plugin is not built or cannot be loaded.
    """
    if name not in MODULE_FORCE_NAMES:
        raise ValueError(f"module force name {name!r} is not registered in MODULE_FORCE_NAMES")
    force = plugin.TorchModuleForce(module)
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
    made by :func:`create_module_force`, also after a system.xml round trip or
    :func:`for_platform`), or a CustomCVForce wrapping one."""
    import openmm
    if force.getName() in MODULE_FORCE_NAMES or plugin.is_torch_module_force(force) or _is_torch_force(force):
        return True
    if isinstance(force, openmm.CustomCVForce):
        return any(is_ml_force(force.getCollectiveVariable(i)) for i in range(force.getNumCollectiveVariables()))
    return False


def _is_torch_force(force) -> bool:
    # only a process that imported openmmtorch can hold a TorchForce (importing it here would
    # print openmmtorch's deprecation warning for nothing)
    openmmtorch = sys.modules.get("openmmtorch")
    return openmmtorch is not None and openmmtorch.TorchForce.isinstance(force)


def to_torch_force(force):
    """openmm-torch's ``TorchForce`` with the same module, periodicity, global parameters,
    energy-parameter derivatives, force group and name as a ``TorchModuleForce``.

    openmm-torch runs on the CUDA and OpenCL platforms, where the plugin has no kernel.  Note
    that openmm-torch 1.5's TorchForce cannot be read back from XML with openmm 8.6.1 (its XML
    reader crashes the process), so the result is for creating Contexts, not for saving.
    """
    import openmmtorch  # torch is imported first (module level): it loads the libraries TorchForce links to
    source = plugin.as_torch_module_force(force)
    converted = openmmtorch.TorchForce(source.getModule())
    converted.setUsesPeriodicBoundaryConditions(source.usesPeriodicBoundaryConditions())
    for i in range(source.getNumGlobalParameters()):
        converted.addGlobalParameter(source.getGlobalParameterName(i), source.getGlobalParameterDefaultValue(i))
    for i in range(source.getNumEnergyParameterDerivatives()):
        converted.addEnergyParameterDerivative(source.getEnergyParameterDerivativeName(i))
    converted.setForceGroup(source.getForceGroup())
    converted.setName(source.getName())
    return converted


def to_torch_forces(system):
    """A copy of ``system`` in which every ``TorchModuleForce`` is replaced by an equivalent
    openmm-torch ``TorchForce`` (:func:`to_torch_force`), at the same index.

    Raises
    ------
    HybridError
        If a ``CustomCVForce`` holds a ``TorchModuleForce``: the converted TorchForce would
        have to be cloned through XML by the CustomCVForce, which crashes with openmm-torch 1.5.
    """
    import copy
    import openmm
    converted = openmm.XmlSerializer.clone(system)
    forces = [converted.getForce(i) for i in range(converted.getNumForces())]
    for force in forces:
        if isinstance(force, openmm.CustomCVForce) and is_ml_force(force):
            raise HybridError(
                f"the CustomCVForce '{force.getName()}' holds a TorchModuleForce; it cannot be converted to "
                f"openmm-torch's TorchForce, which a CustomCVForce clones through XML (that crashes with "
                f"openmm-torch 1.5 + openmm 8.6.1). Run this System on the CPU or Reference platform")
    first = next((i for i, force in enumerate(forces) if plugin.is_torch_module_force(force)), None)
    if first is None:
        return converted
    # System has no replaceForce: take the forces from the first one on off and add them back
    # in order, so force indices are unchanged.
    tail = [to_torch_force(force) if plugin.is_torch_module_force(force) else copy.copy(force)
            for force in forces[first:]]
    for i in reversed(range(first, len(forces))):
        converted.removeForce(i)
    for force in tail:
        converted.addForce(force)
    return converted


def for_platform(system, platform):
    """The System to create a Context with on ``platform``.

    The Reference and CPU platforms run ``TorchModuleForce`` natively: ``system`` itself is
    returned.  For other platforms (CUDA, OpenCL, HIP) a copy is returned in which every
    ``TorchModuleForce`` is replaced by openmm-torch's ``TorchForce`` running the same module
    (:func:`to_torch_forces`); without this, creating a Context there fails with an error that
    names this function.

    Parameters
    ----------
    system : openmm.System
    platform : openmm.Platform or str
        The platform (or its name) the Context will use.

    Returns
    -------
    openmm.System
    """
    import openmm
    if isinstance(platform, str):
        platform = openmm.Platform.getPlatformByName(platform)
    has_module_force = any(plugin.is_torch_module_force(f) or isinstance(f, openmm.CustomCVForce) and is_ml_force(f)
                           for f in system.getForces())
    if not has_module_force or plugin.has_native_kernel(platform):
        return system
    return to_torch_forces(system)


def default_platform():
    """The platform OpenMM would pick for a new Context: the fastest one registered."""
    import openmm
    platforms = [openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms())]
    return max(platforms, key=lambda p: p.getSpeed())
