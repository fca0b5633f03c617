"""User TorchScript models (a ``.pt`` file saved with ``torch.jit.save``).

The file must contain a module that follows the contract in
:mod:`openmm_hybrid.models.base`: ``forward(atomic_numbers, positions_nm,
total_charge) -> energy_kJ_per_mol``.  It is checked on load with a small test
molecule so that a wrong signature fails here, not in the middle of a run.
"""
from pathlib import Path

import torch

from ..errors import InputFileError, ModelError
from .base import MLModel, ModelFamily, check_precision, refuse_options


def load_torchscript_model(path, precision: str = "single") -> MLModel:
    """Load a TorchScript model file and check it follows the contract.

    Parameters
    ----------
    path : str or Path
        File written by ``torch.jit.save``.
    precision : {"single", "double"}
        The model's parameters are converted to float32 or float64.
    """
    check_precision(precision)
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"model file '{path}' does not exist")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelError(f"'{path}' is not a TorchScript model file ({exc})") from exc
    dtype = torch.float64 if precision == "double" else torch.float32
    module = module.to(dtype)
    supported = getattr(module, "supported_elements", None)
    supported = [int(z) for z in supported] if supported is not None else None
    supports_charge = bool(getattr(module, "supports_charge", False))
    _check_contract(module, path, dtype, supported)
    return MLModel(name=str(path), module=module, precision=precision,
                   supported_elements=supported, supports_charge=supports_charge,
                   description=f"TorchScript model {path.name}, {precision} precision")


def _check_contract(module, path, dtype, supported):
    z = 6 if supported is None or 6 in supported else supported[0]
    atomic_numbers = torch.tensor([z, z], dtype=torch.int64)
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.15, 0.0, 0.0]], dtype=dtype, requires_grad=True)
    try:
        energy = module(atomic_numbers, positions, torch.tensor(0.0, dtype=dtype))
    except Exception as exc:
        raise ModelError(
            f"model '{path}' does not follow the contract forward(atomic_numbers: int64[n], "
            f"positions: float[n,3] in nm, total_charge: float[]) -> energy in kJ/mol: {exc}") from exc
    if not isinstance(energy, torch.Tensor) or energy.numel() != 1:
        raise ModelError(f"model '{path}' must return a single energy (kJ/mol), got {type(energy).__name__}"
                         f" of shape {getattr(energy, 'shape', None)}")
    if not energy.requires_grad:
        raise ModelError(f"model '{path}' returns an energy that does not depend differentiably on positions")


class TorchScriptFileFamily(ModelFamily):
    """A user's TorchScript file following the model contract (no options)."""

    names = ("torchscript",)
    file_suffixes = (".pt", ".pth", ".ts")

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        refuse_options("TorchScript file", options)
        if spec == "torchscript":
            raise ModelError("give the TorchScript model as the path of its file (model='model.pt')")
        return load_torchscript_model(spec, precision=precision)
