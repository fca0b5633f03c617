"""ML models: the contract every model follows, the families that load them, and the registry.

- :mod:`.base`: :class:`MLModel` (a loaded model), the input/output contract and :class:`ModelFamily`;
- :mod:`.registry`: :func:`load_model`, :func:`describe_model`, :func:`register_model_family`,
  :func:`register_model`;
- :mod:`.ani` / :mod:`.aev`: ANI-2x; :mod:`.torchscript_file`: user TorchScript files;
- :mod:`.emle`: the EMLE model used by electrostatic embedding (not an ML potential of the region).
"""
from .base import MLModel, ModelCapabilities, ModelFamily
from .emle import EMLEModel
from .registry import available_models, describe_model, load_model, register_model, register_model_family

__all__ = ["MLModel", "ModelCapabilities", "ModelFamily", "EMLEModel", "available_models", "describe_model",
           "load_model", "register_model", "register_model_family"]
