"""AIMNet2 (the ``aimnet`` package) as TorchScript models following the openmm-hybrid contract.

Files: the published AIMNet2 files in both of ``aimnet``'s formats, read by its own loader
(``aimnet.models.base.load_model``): the current ``.pt`` (state dict + model YAML + metadata,
what ``aimnet``'s registry downloads) and the legacy TorchScript ``.jpt``.  The long-range
terms the metadata asks for (full Coulomb of the predicted charges, DFT-D3(BJ) dispersion) are
``aimnet``'s own modules, set up as ``aimnet``'s ``AIMNet2Calculator`` sets them up (its
in-vacuo ``"simple"`` Coulomb; D3 with its 15 A cutoff and smoothing).

TorchScript: ``aimnet``'s current modules cannot be compiled by ``torch.jit.script`` (they use
``typing.cast``), so :meth:`AIMNet2Model.specialize` records them with ``torch.jit.trace``
for one ML region: the region's elements are fixed, the total charge and the coordinates are
inputs.  The evaluation is ``aimnet``'s dense single-molecule mode (all atom pairs, no
neighbour list), which has no control flow that depends on coordinates or charge, so the
recorded graph is the model's for every geometry and charge of that region (checked by
tests/test_models_aimnet2.py against ``aimnet``'s own evaluation at other geometries and
charges).  D3 is recorded through ``aimnet``'s differentiable PyTorch path of ``DFTD3`` (the
calculator's default path is a Warp kernel, which TorchScript cannot hold).

The whole model runs in the precision asked for (parameters and the float64 atomic shifts
included): TorchScript's automatic differentiation of mixed float32/float64 graphs fails.

Units: AIMNet2 works in angstrom and eV; positions are converted from nm, energies to kJ/mol.
"""
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..errors import InputFileError, ModelError
from .base import MLModel, ModelCapabilities, ModelFamily, SpecializingModel, check_precision, refuse_options
from .model_files import FixedRegionModule, dtype_of, find_model_file, import_family_package

# openmm-ml 1.8's names -> aimnet's registry family (member index appended: "_0" ... "_3")
KNOWN_MODELS = {
    "aimnet2": "aimnet2-wb97m-d3",
    "aimnet2-2025": "aimnet2-b973c-2025-d3",
    "aimnet2-nse": "aimnet2-nse",
    "aimnet2-pd": "aimnet2-pd",
    "aimnet2-rxn": "aimnet2-rxn",
}
ENSEMBLE_SIZE = 4
# elements of the published general-purpose AIMNet2 models (aimnet's documentation)
AIMNET2_ELEMENTS = [1, 5, 6, 7, 8, 9, 14, 15, 16, 17, 33, 34, 35, 53]


class AIMNet2Energy(torch.nn.Module):
    """``aimnet``'s model and its long-range terms on one molecule: what is traced.

    ``forward(coord (1, n, 3) A, numbers (1, n), charge (1,)) -> energy (eV, 0-d)``.
    """

    def __init__(self, model: torch.nn.Module, coulomb: Optional[torch.nn.Module],
                 dispersion: Optional[torch.nn.Module], spin_channels: bool):
        super().__init__()
        self.model = model
        self.coulomb = coulomb
        self.dispersion = dispersion
        self.spin_channels = spin_channels

    def forward(self, coord: torch.Tensor, numbers: torch.Tensor, charge: torch.Tensor) -> torch.Tensor:
        data = {"coord": coord, "numbers": numbers, "charge": charge}
        if self.spin_channels:  # open-shell models read the multiplicity (a closed shell: 1)
            data["mult"] = torch.ones_like(charge)
        data = self.model(data)
        if self.coulomb is not None:
            data = self.coulomb(data)
        if self.dispersion is not None:
            data = self.dispersion(data, hessian=True)  # aimnet's differentiable PyTorch D3 path
        return data["energy"].sum()


class AIMNet2RegionModel(FixedRegionModule):
    """AIMNet2 for one fixed ML region, the TorchScript module run inside OpenMM.

    Holds the traced :class:`AIMNet2Energy`; ``forward(atomic_numbers, positions_nm,
    total_charge) -> energy_kJ_per_mol`` follows :mod:`openmm_hybrid.models.base`.
    """

    def __init__(self, energy: torch.jit.ScriptModule, atomic_numbers: Sequence[int], supports_charge: bool):
        super().__init__(atomic_numbers, supports_charge)
        self.energy = energy

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        self.check_atomic_numbers(atomic_numbers)
        energy = self.energy((positions * self.nm_to_angstrom).unsqueeze(0), self.atomic_numbers.unsqueeze(0),
                             total_charge.to(positions.dtype).reshape(1))
        return energy.to(torch.float64) * self.ev_to_kj_per_mol


class AIMNet2Model(SpecializingModel):
    """An AIMNet2 model in the openmm-hybrid contract, traced per ML region (:meth:`specialize`).

    Parameters
    ----------
    energy : AIMNet2Energy
        ``aimnet``'s model with its long-range terms, in the model's precision.
    dtype : torch.dtype
        float32 or float64.
    supported_elements : list of int
    supports_charge : bool
    """

    def __init__(self, energy: AIMNet2Energy, dtype: torch.dtype, supported_elements: List[int],
                 supports_charge: bool):
        super().__init__()
        self.energy = energy
        self.dtype = dtype
        self.supported_elements = list(supported_elements)
        self.supports_charge = bool(supports_charge)

    def specialize(self, atomic_numbers) -> AIMNet2RegionModel:
        atomic_numbers = [int(z) for z in atomic_numbers]
        n = len(atomic_numbers)
        # any geometry without overlapping atoms: the trace records the same operations for all
        grid = torch.arange(n, dtype=self.dtype)
        example = torch.stack([1.4 * grid, 0.9 * (grid % 2), 0.7 * (grid % 3)], dim=1).unsqueeze(0)
        numbers = torch.tensor([atomic_numbers], dtype=torch.int64)
        charge = torch.zeros(1, dtype=self.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings on shape-derived Python values
            traced = torch.jit.trace(self.energy, (example, numbers, charge), check_trace=False)
        return AIMNet2RegionModel(traced, atomic_numbers, self.supports_charge)


def _registry_file(registry_name: str) -> Dict[str, str]:
    registry = import_family_package("aimnet.calculators.model_registry", "aimnet2", "AIMNet2")
    entry = registry.load_model_registry()["models"].get(registry_name)
    if entry is None:
        raise ModelError(f"AIMNet2 model {registry_name} is not in aimnet's model registry")
    return entry


def resolve_aimnet2_file(name: str, model_index: Optional[int]) -> Path:
    """The published file of AIMNet2 model ``name`` (member ``model_index``, default 0)."""
    index = 0 if model_index is None else int(model_index)
    if not 0 <= index < ENSEMBLE_SIZE:
        raise ModelError(f"{name}: model_index must be 0-{ENSEMBLE_SIZE - 1} (one member of the "
                         f"{ENSEMBLE_SIZE}-member ensemble), not {model_index}")
    registry_name = f"{KNOWN_MODELS[name]}_{index}"
    entry = _registry_file(registry_name)
    registry = import_family_package("aimnet.calculators.model_registry", "aimnet2", "AIMNet2")
    cached = Path(registry.get_cache_dir()) / entry["file"]
    return find_model_file(name, entry["file"], cached, lambda: registry.get_registry_model_path(registry_name),
                           "aimnet")


def load_aimnet2(path, precision: str = "single", name: Optional[str] = None) -> MLModel:
    """Load an AIMNet2 file (``.pt`` or legacy ``.jpt``) as an :class:`MLModel`.

    The model, its metadata and the long-range terms are ``aimnet``'s own
    (``AIMNet2Calculator``), so element list, charge support, Coulomb and dispersion are as
    ``aimnet`` evaluates the file.
    """
    check_precision(precision)
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"AIMNet2 model file '{path}' does not exist")
    calculators = import_family_package("aimnet.calculators", "aimnet2", "AIMNet2")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calculator = calculators.AIMNet2Calculator(str(path), device="cpu")
    except Exception as exc:
        raise ModelError(f"'{path}' is not an AIMNet2 model file aimnet can read ({exc})") from exc
    metadata = dict(calculator.metadata or {})
    dtype = dtype_of(precision)
    use_input_dtype(calculator.model, dtype)
    energy = AIMNet2Energy(calculator.model, calculator.external_coulomb, calculator.external_dftd3,
                           spin_channels=calculator.is_nse)
    energy = energy.to(dtype).eval()
    energy.requires_grad_(False)
    elements = [int(z) for z in metadata.get("implemented_species") or []] or None
    supports_charge = metadata.get("supports_charged_systems") is not False
    return MLModel(name=name or str(path), module=AIMNet2Model(energy, dtype, elements or [], supports_charge),
                   precision=precision, supported_elements=elements, supports_charge=supports_charge,
                   description=f"AIMNet2 {path.name} (aimnet {_aimnet_version()}), {precision} precision",
                   options={"file": str(path)})


def use_input_dtype(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Make aimnet's model cast its floating-point inputs to ``dtype``.

    aimnet's ``AIMNet2Base`` casts coordinates and charges to the default dtype of the
    process that imported it (float32), whatever the model's precision; in double precision
    the inputs must stay float64.  (A legacy TorchScript ``.jpt`` model keeps its own casts.)
    """
    for name in ("_required_keys_dtype", "_optional_keys_dtype"):
        dtypes = getattr(model, name, None)
        if isinstance(dtypes, list) and not isinstance(model, torch.jit.ScriptModule):
            setattr(model, name, [dtype if d.is_floating_point else d for d in dtypes])


def _aimnet_version() -> str:
    aimnet = import_family_package("aimnet", "aimnet2", "AIMNet2")
    return getattr(aimnet, "__version__", "unknown")


class AIMNet2Family(ModelFamily):
    """AIMNet2: openmm-ml's names (``aimnet2``, ``aimnet2-2025``, ``aimnet2-nse``, ``aimnet2-pd``,
    ``aimnet2-rxn``; option ``model_index`` 0-3, default 0) and AIMNet2 files (``.jpt``, and
    ``.pt`` files holding aimnet's state-dict format)."""

    names = tuple(KNOWN_MODELS)
    file_suffixes = (".jpt",)

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        if spec in KNOWN_MODELS:
            refuse_options("AIMNet2", options, accepted=("model_index",))
            path = resolve_aimnet2_file(spec, options.get("model_index"))
            return load_aimnet2(path, precision, name=spec)
        refuse_options("AIMNet2 file", options)
        return load_aimnet2(spec, precision)

    def claims_file(self, path: str) -> bool:
        return super().claims_file(path) or is_aimnet2_state_file(path)

    def describe(self, spec: str, **options) -> ModelCapabilities:
        if spec in ("aimnet2", "aimnet2-2025"):
            return ModelCapabilities(list(AIMNET2_ELEMENTS), True)
        if spec == "aimnet2-rxn":
            return ModelCapabilities(None, False)
        return super().describe(spec, **options)


def is_aimnet2_state_file(path) -> bool:
    """Whether ``path`` is a ``.pt`` file in aimnet's state-dict format (not TorchScript).

    Read without unpickling: a ``torch.save`` archive of aimnet's dictionary has a
    ``data.pkl`` naming the ``model_yaml`` entry and no TorchScript ``code/`` folder.
    """
    path = Path(path)
    if path.suffix.lower() != ".pt" or not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if any("/code/" in name for name in names):
            return False
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        return any(b"model_yaml" in archive.read(name) for name in pickles)
