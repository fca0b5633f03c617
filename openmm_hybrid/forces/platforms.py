"""Systems for platforms where the plugin has no kernel: openmm-torch's ``TorchForce`` instead.

The plugin's kernels run ``TorchModuleForce`` on the Reference and CPU platforms, and on CUDA where
its CUDA kernel is built.  Elsewhere (OpenCL, HIP, CUDA without that kernel) :func:`for_platform`
swaps each such force for openmm-torch's ``TorchForce`` running the same module.
"""
import copy

import openmm

from ..errors import HybridError
from . import plugin
from .module_force import is_ml_force


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

    if isinstance(platform, str):
        platform = openmm.Platform.getPlatformByName(platform)
    has_module_force = any(plugin.is_torch_module_force(f) or isinstance(f, openmm.CustomCVForce) and is_ml_force(f)
                           for f in system.getForces())
    if not has_module_force or plugin.has_native_kernel(platform):
        return system
    return to_torch_forces(system)


def default_platform():
    """The platform OpenMM would pick for a new Context: the fastest one registered."""
    platforms = [openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms())]
    return max(platforms, key=lambda p: p.getSpeed())


def available_platforms() -> list:
    """Names of the OpenMM platforms registered in this process."""
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def platform_by_name(name=None):
    """The OpenMM platform called ``name`` (``None``: :func:`default_platform`).

    Raises
    ------
    HybridError
        For an unknown or unavailable name, listing the available platforms.
    """
    if name is None:
        return default_platform()
    try:
        return openmm.Platform.getPlatformByName(str(name))
    except openmm.OpenMMException:
        raise HybridError(f"OpenMM platform {name!r} is not available here; available: "
                          f"{', '.join(available_platforms())}") from None
