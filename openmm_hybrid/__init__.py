"""openmm-hybrid: ML/MM embedding for OpenMM.

Public API (imported lazily, so ``import openmm_hybrid`` is cheap and safe to do
from openmm-ml's entry-point loading):

- :func:`build_system` / :class:`BuiltSystem` — protein + ligand -> solvated MM System
- :func:`load_ligand` / :class:`Ligand`, :class:`LigandTemplateGenerator`
- :class:`HybridForceField`, :func:`forcefield_path` — ML/MM from ``ForceField.createSystem``
  (importing the package also registers the ``<MLMMEmbedding>`` force-field XML tag)
- :func:`load_model` / :class:`MLModel` — ANI-2x or a TorchScript file
- :class:`EMLEModel` — EMLE electrostatic-embedding model (static + induced energies)
- :func:`create_hybrid_system` / :class:`HybridSystem` — MM System -> ML/MM System
- :func:`energy_decomposition` — energies by component
- :func:`run_simulation` — minimise + Langevin MD with logging
"""
import importlib

import torch  # noqa: F401  (first: it loads libtorch and the CUDA runtime libraries the plugin's kernels link to)


def _load_torch_kernels() -> None:
    """Load openmm-torch's kernel plugins if OpenMM could not load them at its own import.

    ``import openmm`` loads every plugin library at once; openmm-torch's link to libraries that
    ``import torch`` loads (libtorch, libnvrtc), so in a script that imports openmm before
    torch (any ordinary OpenMM script) they fail, and a Context with a TorchForce (which
    openmm-hybrid uses on GPU platforms, see ``ml_force.for_platform``) then has no kernels
    ("does not support all required kernels").  Retrying after torch is loaded works.
    """
    import re
    import openmm
    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.match(r"Error loading library (\S*OpenMMTorch\S*\.(?:so|dylib|dll)):", failure)
        if match:
            try:
                openmm.Platform.loadPluginLibrary(match.group(1))
            except Exception:  # e.g. the OpenCL kernels without an OpenCL runtime: not needed here
                pass


_load_torch_kernels()

from . import plugin as _plugin  # noqa: E402

# The compiled plugin (TorchModuleForce, its kernels and XML proxy): loaded now so that
# openmm.XmlSerializer can read system.xml files holding the force.  A missing build is
# reported when a force is created (openmm_hybrid.plugin.require), not here.
_plugin.load()

from . import forcefield as _forcefield  # noqa: E402,F401  (registers the <MLMMEmbedding> force-field tag)

__version__ = "0.1.0"

_EXPORTS = {
    "build_system": "builder", "BuiltSystem": "builder", "load_build": "builder",
    "load_ligand": "ligand", "Ligand": "ligand",
    "LigandTemplateGenerator": "template_generator",
    "HybridForceField": "forcefield", "forcefield_path": "forcefield",
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
