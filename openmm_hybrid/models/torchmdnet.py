"""TorchMD-Net (the ``torchmd-net`` package: TensorNet, AceFF) as TorchScript models.

Files: TorchMD-Net checkpoints (``.ckpt``, what training writes and what AceFF is published
as), read by ``torchmdnet.models.model.load_model`` with the settings openmm-ml 1.8 uses
(``derivative=False``, ``remove_ref_energy=True``, no Coulomb cutoff in vacuo).  The model
is compiled with ``torch.jit.script``.

What the adapter changes, and why: torchmd-net 3 computes neighbour lists and TensorNet's
tensor operations with Warp kernels registered as Python custom operators; run from
TorchScript they would call back into Python at every step, and a System file holding them
could not be read by a process without torchmd-net.  So every ``OptimizedDistance``
neighbour list of the model is replaced by :class:`AllPairsDistance` (same pairs: all
ordered pairs within the cutoffs, self loops and transposes as configured; the region is
small and in vacuo), and TensorNet is compiled on torchmd-net's own pure-PyTorch code path
(the one it uses when Warp is not installed).  Energies and forces equal torchmd-net's own
evaluation (tests/test_models_torchmdnet.py).

Units: options ``length_scale`` (nm per model length unit, default 0.1: angstrom) and
``energy_scale`` (kJ/mol per model energy unit, default 1 eV), as openmm-ml's
``lengthScale``/``energyScale``.  The region's net charge is passed as TorchMD-Net's total
charge ``q``.
"""
import contextlib
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import torch

from ..errors import InputFileError, ModelError
from .base import MLModel, ModelCapabilities, ModelFamily, check_precision, refuse_options
from .model_files import EV_TO_KJ_PER_MOL, dtype_of, find_model_file, import_family_package

# openmm-ml 1.8's names -> (Hugging Face repository, file)
KNOWN_MODELS = {
    "aceff-1.0": ("Acellera/AceFF-1.0", "aceff_v1.0.ckpt"),
    "aceff-1.1": ("Acellera/AceFF-1.1", "aceff_v1.1.ckpt"),
    "aceff-2.0": ("Acellera/AceFF-2.0", "aceff_v2.0.ckpt"),
}
# torchmd-net's pure-PyTorch TensorNet functions, bound in place of the Warp ones while compiling
_PURE_TORCH_FUNCTIONS = {"compose_tensor": "_compose_tensor", "decompose_tensor": "_decompose_tensor",
                         "tensor_matmul_o3": "_tensor_matmul_o3", "tensor_matmul_so3": "_tensor_matmul_so3"}


class AllPairsDistance(torch.nn.Module):
    """All-pairs replacement of torchmd-net's ``OptimizedDistance`` (one molecule, no box).

    Returns ``(edge_index, edge_weight, edge_vec)`` like ``OptimizedDistance``: the ordered
    pairs ``(i, j)`` with ``cutoff_lower <= r_ij < cutoff_upper`` (both orders if
    ``include_transpose``, else ``i > j``), then self loops ``(i, i)`` with zero distance if
    ``loop``; ``edge_vec = pos[i] - pos[j]``.
    """

    cutoff_lower: float
    cutoff_upper: float
    loop: bool
    include_transpose: bool
    return_vecs: bool

    def __init__(self, cutoff_lower: float, cutoff_upper: float, loop: bool, include_transpose: bool,
                 return_vecs: bool):
        super().__init__()
        self.cutoff_lower = float(cutoff_lower)
        self.cutoff_upper = float(cutoff_upper)
        self.loop = bool(loop)
        self.include_transpose = bool(include_transpose)
        self.return_vecs = bool(return_vecs)

    def forward(self, pos: torch.Tensor, batch: Optional[torch.Tensor] = None,
                box: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        n = pos.shape[0]
        i, j = torch.meshgrid(torch.arange(n, device=pos.device), torch.arange(n, device=pos.device), indexing="ij")
        keep = i != j if self.include_transpose else i > j
        i, j = i[keep], j[keep]
        vec = pos[i] - pos[j]
        distance = torch.sqrt((vec * vec).sum(dim=1))
        within = (distance >= self.cutoff_lower) & (distance < self.cutoff_upper)
        i, j, vec, distance = i[within], j[within], vec[within], distance[within]
        if self.loop:
            self_index = torch.arange(n, device=pos.device)
            i = torch.cat([i, self_index])
            j = torch.cat([j, self_index])
            vec = torch.cat([vec, torch.zeros((n, 3), dtype=pos.dtype, device=pos.device)])
            distance = torch.cat([distance, torch.zeros(n, dtype=pos.dtype, device=pos.device)])
        edge_index = torch.stack([i, j])
        if self.return_vecs:
            return edge_index, distance, vec
        return edge_index, distance, None


class TorchMDNetRegionModel(torch.nn.Module):
    """A scripted TorchMD-Net model on the ML region, the TorchScript module run inside OpenMM.

    ``forward(atomic_numbers, positions_nm, total_charge) -> energy_kJ_per_mol`` follows
    :mod:`openmm_hybrid.models.base`.
    """

    supported_elements: List[int]
    supports_charge: bool
    length_scale: float
    energy_scale: float

    def __init__(self, model: torch.jit.ScriptModule, supported_elements: List[int], length_scale: float,
                 energy_scale: float):
        super().__init__()
        self.model = model
        self.supported_elements = list(supported_elements)
        self.supports_charge = True
        self.length_scale = float(length_scale)
        self.energy_scale = float(energy_scale)

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        batch = torch.zeros_like(atomic_numbers)
        energy, _ = self.model(atomic_numbers, positions / self.length_scale, batch,
                               q=total_charge.to(positions.dtype).reshape(1))
        return energy.sum().to(torch.float64) * self.energy_scale


def _replace_neighbour_lists(module: torch.nn.Module, distance_class) -> int:
    """Replace every ``OptimizedDistance`` below ``module`` by :class:`AllPairsDistance`."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, distance_class):
            setattr(module, name, AllPairsDistance(child.cutoff_lower, child.cutoff_upper, child.loop,
                                                   child.include_transpose, child.return_vecs))
            replaced += 1
        else:
            replaced += _replace_neighbour_lists(child, distance_class)
    return replaced


@contextlib.contextmanager
def pure_torch_tensornet(model: torch.nn.Module) -> Iterator[None]:
    """TensorNet on torchmd-net's pure-PyTorch path (as without Warp) while the block runs.

    Its modules' ``opt`` flag is set off for good (a TorchScript constant); the module-level
    tensor functions are the pure-PyTorch ones inside the block only.
    """
    for submodule in model.modules():
        if hasattr(submodule, "opt"):
            submodule.opt = False
            # a TorchScript constant: `if self.opt:` is then decided at compile time, so the
            # Warp operators of the other branch are not compiled into the module at all
            submodule.__constants__ = sorted(set(getattr(submodule, "__constants__", ())) | {"opt"})
    modules = [import_family_package(name, "torchmdnet", "TorchMD-Net")
               for name in ("torchmdnet.models.tensornet", "torchmdnet.models.tensornet2")]
    saved = []
    for module in modules:
        for name, pure in _PURE_TORCH_FUNCTIONS.items():
            if hasattr(module, name) and hasattr(modules[0], pure):
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, getattr(modules[0], pure))
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def script_torchmdnet(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """Compile a torchmd-net model to TorchScript with all-pairs neighbour lists and no Warp kernels."""
    utils = import_family_package("torchmdnet.models.utils", "torchmdnet", "TorchMD-Net")
    _replace_neighbour_lists(model, utils.OptimizedDistance)
    with pure_torch_tensornet(model):
        return torch.jit.script(model)


def load_torchmdnet(path, precision: str = "single", length_scale: float = 0.1,
                    energy_scale: float = EV_TO_KJ_PER_MOL, remove_ref_energy: bool = True,
                    name: Optional[str] = None) -> MLModel:
    """Load a TorchMD-Net checkpoint as an :class:`MLModel` (compiled to TorchScript)."""
    check_precision(precision)
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"TorchMD-Net checkpoint '{path}' does not exist")
    model_module = import_family_package("torchmdnet.models.model", "torchmdnet", "TorchMD-Net")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model_module.load_model(str(path), derivative=False, remove_ref_energy=remove_ref_energy,
                                            static_shapes=False, coulomb_cutoff=None)
    except Exception as exc:
        raise ModelError(f"'{path}' is not a TorchMD-Net checkpoint torchmd-net can read ({exc})") from exc
    model = model.to(dtype_of(precision)).eval()
    model.requires_grad_(False)
    max_z = int(getattr(model.representation_model, "max_z", 100))
    elements = list(range(1, max_z))
    try:
        scripted = script_torchmdnet(model)
    except Exception as exc:
        raise ModelError(f"TorchMD-Net model '{path}' cannot be compiled to TorchScript ({exc})") from exc
    module = TorchMDNetRegionModel(scripted, elements, length_scale, energy_scale)
    architecture = type(model.representation_model).__name__
    return MLModel(name=name or str(path), module=module, precision=precision, supported_elements=elements,
                   supports_charge=True,
                   description=f"TorchMD-Net {architecture} {path.name}, {precision} precision",
                   options={"file": str(path), "length_scale": length_scale, "energy_scale": energy_scale})


def resolve_torchmdnet_file(name: str) -> Path:
    """The published checkpoint of ``name`` (AceFF), through Hugging Face's cache and download."""
    repository, file_name = KNOWN_MODELS[name]

    def hub():
        return import_family_package("huggingface_hub", "torchmdnet", "TorchMD-Net")

    cached = None
    try:
        cached = Path(hub().hf_hub_download(repository, file_name, local_files_only=True))
    except Exception:  # not cached (or no huggingface_hub): the download below says why
        pass
    return find_model_file(name, file_name, cached, lambda: hub().hf_hub_download(repository, file_name),
                           "huggingface_hub")


class TorchMDNetFamily(ModelFamily):
    """TorchMD-Net: openmm-ml's AceFF names (``aceff-1.0``, ``aceff-1.1``, ``aceff-2.0``) and
    ``.ckpt`` checkpoints; options ``length_scale``, ``energy_scale``, ``remove_ref_energy``."""

    names = tuple(KNOWN_MODELS)
    file_suffixes = (".ckpt",)
    options = ("length_scale", "energy_scale", "remove_ref_energy")

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        refuse_options("TorchMD-Net", options, accepted=self.options)
        if spec in KNOWN_MODELS:
            return load_torchmdnet(resolve_torchmdnet_file(spec), precision, name=spec, **options)
        return load_torchmdnet(spec, precision, **options)

    def describe(self, spec: str, **options) -> ModelCapabilities:
        if spec in KNOWN_MODELS:
            return ModelCapabilities(None, True)
        return super().describe(spec, **options)
