"""ML models: the contract every model follows, the families that load them, and the registry.

- :mod:`.base`: :class:`MLModel` (a loaded model), the input/output contract and :class:`ModelFamily`;
- :mod:`.registry`: :func:`load_model`, :func:`describe_model`, :func:`register_model_family`,
  :func:`register_model`;
- :mod:`.ani` / :mod:`.aev`: ANI-2x; :mod:`.torchscript_file`: user TorchScript files;
- :mod:`.aimnet2`, :mod:`.mace`, :mod:`.torchmdnet`: adapters of published model families
  (their packages are optional extras), :mod:`.model_files`: where their files are found;
- :mod:`.emle`: the EMLE model used by electrostatic embedding (not an ML potential of the region).
"""
from .base import MLModel, ModelCapabilities, ModelFamily
from .emle import EMLEModel
from .registry import (available_models, describe_model, family_of, load_model, register_model,
                       register_model_family)

__all__ = ["MLModel", "ModelCapabilities", "ModelFamily", "EMLEModel", "available_models", "describe_model",
           "family_of", "load_model", "register_model", "register_model_family"]
