"""openmm-hybrid: ML/MM embedding for OpenMM.

The package follows the data flow, one sub-package per step: :mod:`.mm` (topology -> MM System),
:mod:`.models` (ML models), :mod:`.forces` (the compiled plugin's force for TorchScript terms),
:mod:`.embeddings` and :mod:`.hybrid` (MM System -> ML/MM System), :mod:`.dynamics` (integrators,
simulation), :mod:`.analysis`, :mod:`.freeenergy`; on top, :mod:`.forcefield` (the drop-in OpenMM
ForceField route), :mod:`.integrations` (openmm-ml) and :mod:`.cli`.

The names a user starts from are exported here: :func:`build_system`, :func:`load_ligand`,
:func:`build_series`, :func:`load_model`, :func:`create_hybrid_system`, :class:`HybridForceField`, :func:`run_simulation`,
:func:`energy_decomposition` (and a few more, see ``__all__``).

Importing the package imports torch, openmm and openmm-ml, loads the compiled plugin (so that
``openmm.XmlSerializer`` reads Systems holding its force; a missing build is reported when a force
is created), registers the ``<MLMMEmbedding>`` force-field tag with ``openmm.app.ForceField`` and
the directory of the shipped force-field files, and loads openmm-torch's kernels if OpenMM could
not load them at its own import.
"""
import re
import sys

# openmm-ml loads its entry points, openmm-hybrid's among them, when it is first imported; doing
# that before any of openmm-hybrid's modules means none of them is half-initialised then.
import openmmml  # noqa: F401,I001
import openmm
import torch  # noqa: F401  (before the plugin: it loads libtorch and the CUDA runtime libraries the kernels link to)


def _load_torch_kernels() -> None:
    """Load openmm-torch's kernel plugins if OpenMM could not load them at its own import.

    ``import openmm`` loads every plugin library at once; openmm-torch's link to libraries that
    ``import torch`` loads (libtorch, libnvrtc), so in a script that imports openmm before
    torch (any ordinary OpenMM script) they fail, and a Context with a TorchForce (which
    openmm-hybrid uses on GPU platforms, see :func:`openmm_hybrid.forces.for_platform`) then has
    no kernels ("does not support all required kernels").  Retrying after torch is loaded works.
    """
    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.match(r"Error loading library (\S*OpenMMTorch\S*\.(?:so|dylib|dll)):", failure)
        if match:
            try:
                openmm.Platform.loadPluginLibrary(match.group(1))
            except Exception:  # e.g. the OpenCL kernels without an OpenCL runtime: not needed here
                pass


_load_torch_kernels()

from .forces import plugin as _plugin  # noqa: E402

_plugin.load()

from . import forces  # noqa: E402
from .analysis.energy import energy_decomposition  # noqa: E402
from .dynamics.integrators import create_mts_langevin_integrator, create_mts_verlet_integrator  # noqa: E402
from .dynamics.simulation import run_simulation  # noqa: E402
from .embeddings.region import check_region  # noqa: E402
from .forcefield import HybridForceField, forcefield_path  # noqa: E402  (registers the <MLMMEmbedding> tag)
from .hybrid import HybridSystem, create_hybrid_system  # noqa: E402
from .integrations.openmmml import register_with_openmmml  # noqa: E402
from .mm import (BuiltSystem, Ligand, LigandTemplateGenerator, build_series, build_system, load_build,  # noqa: E402
                 load_ligand, prepare_protein)
from .mm.selection import select_region  # noqa: E402
from .models import EMLEModel, MLModel, load_model, register_model  # noqa: E402
from .forces import serialization  # noqa: E402

__version__ = "0.1.0"

# Module paths of the documented API before the package had sub-packages.
plugin, ml_force = forces.plugin, forces
for _old, _new in (("plugin", plugin), ("ml_force", ml_force), ("serialization", serialization)):
    sys.modules[f"{__name__}.{_old}"] = _new

__all__ = ["build_system", "build_series", "prepare_protein", "BuiltSystem", "load_build", "load_ligand", "Ligand", "LigandTemplateGenerator",
           "HybridForceField", "forcefield_path", "load_model", "MLModel", "register_model", "EMLEModel",
           "register_with_openmmml", "create_hybrid_system", "HybridSystem", "select_region", "check_region",
           "energy_decomposition", "run_simulation", "create_mts_langevin_integrator",
           "create_mts_verlet_integrator", "serialization"]
