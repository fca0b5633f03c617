"""The registry of ML model families, and :func:`load_model`.

Built in: ANI-2x (``"ani2x"``), TorchScript files (``*.pt``, ``*.pth``, ``*.ts``; see
:mod:`openmm_hybrid.models.base` for the contract), and the adapters of published families:
AIMNet2 (:mod:`.aimnet2`), MACE (:mod:`.mace`), TorchMD-Net (:mod:`.torchmdnet`), whose
packages are optional extras, and NequIP / Allegro deployed files (:mod:`.nequip`, read by torch
alone).  Other families register a :class:`~openmm_hybrid.models.base.ModelFamily` subclass
with :func:`register_model_family`, or through the ``openmm_hybrid.models`` entry point group
(value: the subclass).
"""
import os
from typing import Callable, Dict, List

from .._util import entry_point_targets
from ..errors import ModelError
from .aimnet2 import AIMNet2Family
from .ani import ANI2xFamily
from .base import MLModel, ModelCapabilities, ModelFamily
from .mace import MACEFamily
from .nequip import NequIPFamily
from .torchmdnet import TorchMDNetFamily
from .torchscript_file import TorchScriptFileFamily

ENTRY_POINT_GROUP = "openmm_hybrid.models"

_FAMILIES: List[ModelFamily] = []
_BY_NAME: Dict[str, ModelFamily] = {}
_ENTRY_POINTS_LOADED = False


def register_model_family(family) -> ModelFamily:
    """Register a :class:`ModelFamily` (an instance or the class) under its names; later
    registrations of a name replace earlier ones.  Returns the registered instance."""
    if isinstance(family, type):
        family = family()
    if not isinstance(family, ModelFamily):
        raise TypeError(f"{family!r} is not a ModelFamily")
    _FAMILIES.append(family)
    for name in family.names:
        _BY_NAME[name] = family
    return family


class _LoaderFamily(ModelFamily):
    """A family of one name made from a loader function ``loader(precision=..., **options)``."""

    def __init__(self, name: str, loader: Callable[..., MLModel]):
        self.names = (name,)
        self._loader = loader

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        return self._loader(precision=precision, **options)


def register_model(name: str, loader: Callable[..., MLModel]) -> None:
    """Register a model loader ``loader(precision="single", **options) -> MLModel`` under ``name``."""
    register_model_family(_LoaderFamily(name, loader))


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for name, target in entry_point_targets(ENTRY_POINT_GROUP, _BY_NAME):
        if isinstance(target, type) and issubclass(target, ModelFamily):
            register_model_family(target)
        else:  # a loader function
            register_model(name, target)


def available_models() -> List[str]:
    """Names of the registered models (files of the registered families are accepted too)."""
    _load_entry_points()
    return sorted(_BY_NAME)


def family_of(model) -> ModelFamily:
    """The registered family that loads ``model`` (a name or a file path).

    Raises
    ------
    ModelError
        Neither a registered name nor a file of a registered family.
    """
    _load_entry_points()
    name = os.fspath(model) if isinstance(model, os.PathLike) else str(model)
    if name in _BY_NAME:
        return _BY_NAME[name]
    for family in reversed(_FAMILIES):
        if family.claims_file(name):
            return family
    if os.path.exists(name):  # a file without a known suffix: TorchScript, checked when loaded
        return _BY_NAME["torchscript"]
    raise ModelError(f"unknown model {name!r}: use one of {', '.join(available_models())} "
                     f"or the path of a model file")


def describe_model(model, **options) -> ModelCapabilities:
    """Elements and charge support of a model (name, file or MLModel), cheaply where its family can.

    See :meth:`ModelFamily.describe`; options as for :func:`load_model`.
    """
    if isinstance(model, MLModel):
        return ModelCapabilities(model.supported_elements, model.supports_charge)
    name = os.fspath(model) if isinstance(model, os.PathLike) else str(model)
    return family_of(name).describe(name, **options)


def load_model(model, precision: str = "single", **options) -> MLModel:
    """Return an :class:`MLModel` for a registry name, a model file or an MLModel.

    Parameters
    ----------
    model : str, path or MLModel
        A registered name (``"ani2x"``) or the path of a model file of a registered family
        (a TorchScript ``.pt`` file).  An :class:`MLModel` is returned as it is.
    precision : {"single", "double"}
        float32 or float64 evaluation.
    options :
        Model-specific options, e.g. ``model_index`` for ANI-2x.

    Raises
    ------
    ModelError
        Unknown name or file type, or an option the family does not use.
    """
    if isinstance(model, MLModel):
        return model
    name = os.fspath(model) if isinstance(model, os.PathLike) else str(model)
    return family_of(name).load(name, precision=precision, **options)


register_model_family(ANI2xFamily)
register_model_family(TorchScriptFileFamily)
# registered after the TorchScript files: families are asked in reverse order, and AIMNet2
# claims the .pt files that hold aimnet's state-dict format
register_model_family(MACEFamily)
register_model_family(TorchMDNetFamily)
register_model_family(AIMNet2Family)
# claims the TorchScript files (.pth) that hold nequip's deployment metadata
register_model_family(NequIPFamily)
