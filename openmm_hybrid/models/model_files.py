"""Where published model files are found, and what every adapter of a published family shares.

A named model (``"aimnet2"``, ``"mace-off23-small"``, ``"aceff-1.1"``) is one published file.
:func:`find_model_file` looks for it, in this order:

1. ``$OPENMM_HYBRID_MODEL_DIR/<file name>`` (a folder holding published files, for machines
   without network access);
2. the family package's own cache (where its download route puts it);
3. the family package's own download route (network).

When none of these works, the :class:`~openmm_hybrid.errors.ModelError` names the file
expected and where to put it.

The other helpers are the pieces every adapter's TorchScript module uses: the all-pairs
neighbour list of a small region (:func:`all_pairs`), and :func:`import_family_package`,
which turns a missing optional package into an error that names the extra to install.
"""
import importlib
import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..errors import ModelError

MODEL_DIR_VARIABLE = "OPENMM_HYBRID_MODEL_DIR"
# 1 eV in kJ/mol (CODATA 2018: e * N_A / 1000)
EV_TO_KJ_PER_MOL = 96.48533212331002
NM_TO_ANGSTROM = 10.0


def model_dir() -> Optional[Path]:
    """The folder named by ``$OPENMM_HYBRID_MODEL_DIR``, or None when it is unset."""
    value = os.environ.get(MODEL_DIR_VARIABLE)
    return Path(value) if value else None


def find_model_file(name: str, file_name: str, cached: Optional[Path],
                    download: Callable[[], str], package: str) -> Path:
    """The path of the published file of model ``name`` (see the module docstring for the order).

    Parameters
    ----------
    name : str
        The model name the user gave (``"aimnet2"``), used in messages.
    file_name : str
        The published file's name (``"aimnet2_wb97m_d3_0.pt"``).
    cached : Path, optional
        Where the family package's own cache keeps the file.
    download : callable
        The package's own download route; returns the path of the downloaded file.
    package : str
        The family package (``"aimnet"``), for messages.

    Raises
    ------
    ModelError
        The file is neither in ``$OPENMM_HYBRID_MODEL_DIR`` nor in the cache and cannot be
        downloaded; the message names the file and where to put it.
    """
    folder = model_dir()
    if folder is not None and (folder / file_name).is_file():
        return folder / file_name
    if cached is not None and Path(cached).is_file():
        return Path(cached)
    try:
        return Path(download())
    except Exception as exc:  # no network, HTTP errors, checksum errors: all end here
        where = f"${MODEL_DIR_VARIABLE} (now {folder})" if folder is not None else \
            f"a folder named by ${MODEL_DIR_VARIABLE}"
        raise ModelError(
            f"model '{name}' needs the published file {file_name}, which is not in {where}"
            + (f" nor in {package}'s cache ({cached})" if cached is not None else "")
            + f", and {package} could not download it ({type(exc).__name__}: {exc}). Put {file_name} in "
            f"{where}, or give the file's path as the model") from exc


def import_family_package(module: str, extra: str, family: str):
    """Import a family's optional package, or refuse naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"{family} models need the '{module.split('.')[0]}' package, which cannot be "
                         f"imported ({exc}): pip install \"openmm-hybrid[{extra}]\"") from exc


def all_pairs(n: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(i, j)`` of all ordered pairs ``i != j`` of ``n`` atoms (int64, each of length n(n-1))."""
    i, j = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device), indexing="ij")
    off_diagonal = i != j
    return i[off_diagonal], j[off_diagonal]


def dtype_of(precision: str) -> torch.dtype:
    """float32 for ``"single"``, float64 for ``"double"``."""
    return torch.float64 if precision == "double" else torch.float32


class FixedRegionModule(torch.nn.Module):
    """Base of the TorchScript modules the family adapters build for one ML region.

    Holds the region's atomic numbers (checked at every call), the contract's optional
    attributes, and the unit conversions of families that work in angstrom and eV.
    """

    supported_elements: List[int]
    supports_charge: bool
    nm_to_angstrom: float
    ev_to_kj_per_mol: float

    def __init__(self, atomic_numbers: Sequence[int], supports_charge: bool):
        super().__init__()
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.int64))
        self.supported_elements = sorted({int(z) for z in atomic_numbers})
        self.supports_charge = bool(supports_charge)
        self.nm_to_angstrom = NM_TO_ANGSTROM
        self.ev_to_kj_per_mol = EV_TO_KJ_PER_MOL

    def check_atomic_numbers(self, atomic_numbers: torch.Tensor) -> None:
        if not torch.equal(atomic_numbers, self.atomic_numbers):
            raise RuntimeError("the atomic numbers differ from those of the ML region this module was built for")
