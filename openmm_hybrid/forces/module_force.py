"""The OpenMM force that runs a TorchScript energy module, and how such forces are recognised.

This is the one place that knows how TorchScript energy terms reach OpenMM: every module (the ML
model of the region, embedding couplings such as EMLE) becomes a ``TorchModuleForce`` from
openmm-hybrid's compiled plugin (:mod:`openmm_hybrid.forces.plugin`), which runs it with libtorch
inside the OpenMM context (no Python callback per step) and has its own XML serialization.
"""
import sys
from typing import Optional

import openmm
import torch

from . import plugin

ML_FORCE_NAME = "MLPotential"
EMLE_FORCE_NAME = "EMLEEmbedding"  # the electrostatic-embedding (EMLE) coupling correction
# Names of the forces made by create_module_force (the ML force and embedding couplings).
# A module that creates module forces under another name adds it here at import time, so that
# forces read back from a system.xml are recognised too.
MODULE_FORCE_NAMES = {ML_FORCE_NAME, EMLE_FORCE_NAME}


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


def is_ml_force(force) -> bool:
    """True for a force evaluating a TorchScript module (the ML model or an embedding coupling
    made by :func:`create_module_force`, also after a system.xml round trip or
    :func:`for_platform`), or a CustomCVForce wrapping one."""

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


