"""openmm-hybrid's models as openmm-ml potentials (``MLPotential("hybrid-ani2x")``, ...).

Every registered openmm-hybrid model is available to openmm-ml under ``hybrid-<name>``
(``hybrid-ani2x``); ``hybrid-torchscript`` takes ``modelFile=PATH``.  Their ML force is
openmm-hybrid's ``TorchModuleForce``, run inside OpenMM without a Python callback.
"""
from openmmml.mlpotential import MLPotentialImplFactory

from ...embeddings.mechanical import ModelPotentialImpl
from ...errors import ModelError
from ...models import load_model

PREFIX = "hybrid-"
TORCHSCRIPT_POTENTIAL = "hybrid-torchscript"


class HybridPotentialImplFactory(MLPotentialImplFactory):
    """Creates :class:`~openmm_hybrid.embeddings.mechanical.ModelPotentialImpl` objects for openmm-ml.

    ``MLPotential("hybrid-<name>", precision="single"|"double", modelIndex=None, modelFile=None,
    model=None)``: ``<name>`` is an openmm-hybrid model name; ``modelFile`` gives the file of
    ``hybrid-torchscript`` (or of any family that loads files); ``model`` an already loaded
    :class:`~openmm_hybrid.models.MLModel`.
    """

    def createImpl(self, name: str, model=None, precision: str = "single", modelIndex=None, modelFile=None,
                   **args) -> ModelPotentialImpl:
        if model is None:
            if not name.startswith(PREFIX):
                raise ModelError(f"openmm-hybrid's openmm-ml potentials are named '{PREFIX}<model>', not {name!r}")
            options = {} if modelIndex is None else {"model_index": modelIndex}
            if modelFile is not None:
                model = load_model(modelFile, precision=precision, **options)
            elif name == TORCHSCRIPT_POTENTIAL:
                raise ModelError(f"{TORCHSCRIPT_POTENTIAL} needs modelFile=<path of a TorchScript model>")
            else:
                model = load_model(name[len(PREFIX):], precision=precision, **options)
        return ModelPotentialImpl(load_model(model), name=name)
