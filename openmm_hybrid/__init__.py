"""openmm-hybrid: ML/MM embedding for OpenMM.

Public API (imported lazily, so ``import openmm_hybrid`` is cheap and safe to do
from openmm-ml's entry-point loading):

- :func:`build_system` / :class:`BuiltSystem` — protein + ligand -> solvated MM System
- :func:`load_ligand` / :class:`Ligand`, :class:`LigandTemplateGenerator`
- :func:`load_model` / :class:`MLModel` — ANI-2x or a TorchScript file
- :class:`EMLEModel` — EMLE electrostatic-embedding model (static + induced energies)
- :func:`create_hybrid_system` / :class:`HybridSystem` — MM System -> ML/MM System
- :func:`energy_decomposition` — energies by component
- :func:`run_simulation` — minimise + Langevin MD with logging
"""
import importlib

import torch  # noqa: F401  (must precede openmmtorch: it loads the CUDA runtime libraries TorchForce links to)
import openmmtorch  # noqa: F401  (registers TorchForce with Python: deserialising a system.xml without it crashes)

from .ml_force import install_torch_force_copy

install_torch_force_copy()  # copy.deepcopy(TorchForce) would otherwise crash (openmm 8.6.1 + openmmtorch 1.5)

__version__ = "0.1.0"

_EXPORTS = {
    "build_system": "builder", "BuiltSystem": "builder", "load_build": "builder",
    "load_ligand": "ligand", "Ligand": "ligand",
    "LigandTemplateGenerator": "template_generator",
    "load_model": "models", "MLModel": "models", "register_model": "models",
    "EMLEModel": "models.emle",
    "register_with_openmmml": "openmmml_plugin",
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
