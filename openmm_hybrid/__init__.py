"""openmm-hybrid: ML/MM embedding for OpenMM.

Public API (imported lazily, so ``import openmm_hybrid`` is cheap and safe to do
from openmm-ml's entry-point loading):

- :func:`build_system` / :class:`BuiltSystem` — protein + ligand -> solvated MM System
- :func:`load_ligand` / :class:`Ligand`, :class:`LigandTemplateGenerator`
- :func:`load_model` / :class:`MLModel` — ANI-2x or a TorchScript file
- :func:`create_hybrid_system` / :class:`HybridSystem` — MM System -> ML/MM System
- :func:`energy_decomposition` — energies by component
- :func:`run_simulation` — minimise + Langevin MD with logging
"""
import importlib

import torch  # noqa: F401  (first: it loads libtorch and the CUDA runtime libraries the plugin's kernels link to)

from . import plugin as _plugin

# The compiled plugin (TorchModuleForce, its kernels and XML proxy): loaded now so that
# openmm.XmlSerializer can read system.xml files holding the force.  A missing build is
# reported when a force is created (openmm_hybrid.plugin.require), not here.
_plugin.load()

__version__ = "0.1.0"

_EXPORTS = {
    "build_system": "builder", "BuiltSystem": "builder", "load_build": "builder",
    "load_ligand": "ligand", "Ligand": "ligand",
    "LigandTemplateGenerator": "template_generator",
    "load_model": "models", "MLModel": "models", "register_model": "models",
    "create_hybrid_system": "hybrid", "HybridSystem": "hybrid",
    "select_region": "region", "check_region": "region",
    "energy_decomposition": "energy",
    "run_simulation": "simulate",
}


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'openmm_hybrid' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
