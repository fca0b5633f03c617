"""Registry of ML models.

Built in: ``ani2x``.  Any other name is taken as the path of a TorchScript file
(see :mod:`openmm_hybrid.models.base` for the contract).  Packages can add models
through the ``openmm_hybrid.models`` entry point group: the entry point's name is
the model name and its value a loader ``f(precision="single", **options) -> MLModel``.
"""
import os
from importlib.metadata import entry_points
from typing import Callable, Dict

from ..errors import ModelError
from .ani import load_ani2x
from .base import MLModel
from .torchscript_file import load_torchscript_model

_LOADERS: Dict[str, Callable[..., MLModel]] = {"ani2x": load_ani2x}
_ENTRY_POINTS_LOADED = False


def register_model(name: str, loader: Callable[..., MLModel]) -> None:
    """Register a model loader ``loader(precision="single", **options) -> MLModel`` under ``name``."""
    _LOADERS[name] = loader


def _load_entry_points():
    global _ENTRY_POINTS_LOADED
    if not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        for ep in entry_points(group="openmm_hybrid.models"):
            _LOADERS.setdefault(ep.name, ep.load())


def available_models():
    """Names of the registered models (TorchScript files are accepted in addition)."""
    _load_entry_points()
    return sorted(_LOADERS)


def load_model(model, precision: str = "single", **options) -> MLModel:
    """Return an :class:`MLModel` for a registry name, a TorchScript file path or an MLModel.

    Parameters
    ----------
    model : str, path or MLModel
        ``"ani2x"`` (or another registered name) or a TorchScript file.
    precision : {"single", "double"}
        float32 or float64 evaluation.
    options :
        Model-specific options, e.g. ``model_index`` for ANI-2x.
    """
    if isinstance(model, MLModel):
        return model
    _load_entry_points()
    name = str(model)
    if name in _LOADERS:
        return _LOADERS[name](precision=precision, **options)
    if os.path.exists(name) or name.endswith((".pt", ".pth", ".ts")):
        if options:
            raise ModelError(f"options {sorted(options)} are not used by TorchScript file models")
        return load_torchscript_model(name, precision=precision)
    raise ModelError(f"unknown model {name!r}: use one of {', '.join(available_models())} "
                     f"or the path of a TorchScript file")


__all__ = ["MLModel", "load_model", "register_model", "available_models", "load_ani2x",
           "load_torchscript_model"]
