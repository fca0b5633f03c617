"""OpenMM forces for TorchScript energy terms: the compiled plugin, its force, and its files.

- :mod:`.plugin`: loads the compiled plugin (``TorchModuleForce``, its kernels and XML proxy);
- :mod:`.module_force`: :func:`create_module_force`, the single place that makes such forces;
- :mod:`.ml_force`: the ML force (the model evaluated on the region);
- :mod:`.platforms`: :func:`for_platform`, openmm-torch's ``TorchForce`` where no kernel exists;
- :mod:`.serialization`: reading and writing Systems (``load_system``, ``save_system``);
- :mod:`.fingerprint`: digests of Systems (ML modules by content) for resume checks.
"""
from .ml_force import MLRegionEnergy, create_ml_force, create_region_module
from .module_force import EMLE_FORCE_NAME, ML_FORCE_NAME, MODULE_FORCE_NAMES, create_module_force, is_ml_force
from .platforms import (available_platforms, default_platform, for_platform, platform_by_name, to_torch_force,
                        to_torch_forces)
from .serialization import load_system, save_system

__all__ = ["MLRegionEnergy", "create_ml_force", "create_region_module", "EMLE_FORCE_NAME", "ML_FORCE_NAME",
           "MODULE_FORCE_NAMES", "create_module_force", "is_ml_force", "available_platforms", "default_platform",
           "for_platform", "platform_by_name", "to_torch_force", "to_torch_forces", "load_system", "save_system"]
