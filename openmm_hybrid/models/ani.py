"""ANI-2x as a TorchScript model following the openmm-hybrid contract.

torchani's ensemble is converted to its batched-matmul inference form (the eight
networks of each element evaluated as one ``bmm``), which is what makes the
TorchScript model faster than openmm-ml's eager ANI evaluated through a Python
callback.

Weights are loaded the normal torchani way (``torchani.models.ANI2x()``, which uses
``$TORCHANI_DATA_DIR/StateDicts`` and downloads into it if needed), or offline from
torchani's legacy NeuroChem files when ``$TORCHANI_DATA_DIR/Neurochem/ani-2x_8x.info``
exists and no state dict has been downloaded.
"""
import copy
import os
import warnings
from pathlib import Path
from typing import List, Optional

import torch

from ..errors import ModelError
from .base import MLModel, check_precision

ANI2X_ELEMENTS = [1, 6, 7, 8, 9, 16, 17]
NEUROCHEM_INFO = os.path.join("Neurochem", "ani-2x_8x.info")


def _torchani():
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchani
    return torchani


def torchani_data_dir() -> Path:
    """The directory torchani reads its resources from (``$TORCHANI_DATA_DIR``)."""
    return Path(_torchani().paths.data_dir())


def neurochem_info_file() -> Optional[Path]:
    """Path of the offline ANI-2x NeuroChem info file, or None if not present."""
    path = torchani_data_dir() / NEUROCHEM_INFO
    return path if path.is_file() else None


def load_torchani_ani2x(model_index: Optional[int] = None):
    """Load torchani's ANI-2x model (eager, float32, no gradients on weights).

    Parameters
    ----------
    model_index : int, optional
        Use a single network (0-7) of the eight-network ensemble.

    Returns
    -------
    torchani.arch.ANI
        With ``periodic_table_index=True`` (species given as atomic numbers).
    """
    torchani = _torchani()
    if model_index is not None and not 0 <= int(model_index) < 8:
        raise ModelError(f"ANI-2x model_index must be between 0 and 7, not {model_index}")
    info = neurochem_info_file()
    state_dict = torchani_data_dir() / "StateDicts" / "ani2x_state_dict.pt"
    if info is not None and not state_dict.is_file():
        from torchani.neurochem import load_model_from_info_file
        model = load_model_from_info_file(str(info), model_index=model_index, periodic_table_index=True)
    else:
        try:
            model = torchani.models.ANI2x(model_index=model_index, periodic_table_index=True)
        except Exception as exc:  # network failures surface as many exception types
            raise ModelError(
                f"could not load ANI-2x weights through torchani ({exc}). Without network access, point "
                f"TORCHANI_DATA_DIR at a directory containing {NEUROCHEM_INFO} (torchani's NeuroChem files)"
            ) from exc
    model.requires_grad_(False)
    return model


class ANI2xModel(torch.nn.Module):
    """ANI-2x energy of a molecule, in the openmm-hybrid model contract.

    Parameters
    ----------
    ani : torchani.arch.ANI
        A torchani ANI model with ``periodic_table_index=True``.
    dtype : torch.dtype
        float32 or float64; weights are converted.
    """

    supported_elements: List[int]
    supports_charge: bool

    def __init__(self, ani, dtype: torch.dtype = torch.float32):
        super().__init__()
        torchani = _torchani()
        self.ani = ani.to_infer_model().to(dtype)
        self.ani.requires_grad_(False)
        self.hartree_to_kjmol = float(torchani.units.hartree2kjoulemol(1.0))
        self.supported_elements = list(ANI2X_ELEMENTS)
        self.supports_charge = False

    def specialize(self, atomic_numbers) -> "ANI2xModel":
        """A copy without the networks of elements absent from ``atomic_numbers``.

        The energy is unchanged (those networks are never evaluated), but the TorchScript
        module stored in a system.xml shrinks from seven elements' networks to the few
        the region needs (ANI-2x: about 2.5 M float32 parameters per element).
        """
        from torchani.constants import ATOMIC_NUMBER
        present = {int(z) for z in atomic_numbers}
        pruned = copy.deepcopy(self)
        for symbol, network in pruned.ani.nnp.neural_networks.atomics.items():
            if ATOMIC_NUMBER[symbol] in present:
                continue
            for layer in list(network.layers) + [network.final_layer]:
                shape = (layer.weight.shape[0], 1, 1)
                layer.weight = torch.nn.Parameter(layer.weight.new_zeros(shape), requires_grad=False)
                layer.bias = torch.nn.Parameter(layer.bias.new_zeros(shape), requires_grad=False)
        return pruned

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        coordinates = (positions * 10.0).unsqueeze(0)  # nm -> angstrom
        energies = self.ani((atomic_numbers.unsqueeze(0), coordinates)).energies
        return energies[0] * self.hartree_to_kjmol


def load_ani2x(precision: str = "single", model_index: Optional[int] = None) -> MLModel:
    """Load ANI-2x as an :class:`MLModel` (compiled to TorchScript per ML region).

    Parameters
    ----------
    precision : {"single", "double"}
        float32 (default) or float64 evaluation.
    model_index : int, optional
        A single network of the ensemble instead of the ensemble mean.
    """
    check_precision(precision)
    dtype = torch.float64 if precision == "double" else torch.float32
    module = ANI2xModel(load_torchani_ani2x(model_index), dtype)
    label = "ANI-2x ensemble (8 networks)" if model_index is None else f"ANI-2x network {model_index}"
    return MLModel(name="ani2x", module=module, precision=precision,
                   supported_elements=list(ANI2X_ELEMENTS), supports_charge=False,
                   description=f"{label}, torchani {torchani_version()}, {precision} precision",
                   options={"model_index": model_index})


def torchani_version() -> str:
    return getattr(_torchani(), "__version__", "unknown")
