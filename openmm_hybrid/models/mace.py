"""MACE (the ``mace-torch`` package) as TorchScript models following the openmm-hybrid contract.

Files: MACE ``.model`` files (``torch.save`` of the model, what MACE-OFF23/24 and the other
foundation models are published as, and what ``mace_run_train`` writes).  The model is
compiled with e3nn's ``e3nn.util.jit.compile`` (MACE's own TorchScript route, as used for
its LAMMPS and OpenMM exports) and wrapped by :class:`MACERegionModel`, which builds MACE's
input graph inside TorchScript: every pair of region atoms closer than the model's cutoff
(all pairs are searched: the region is small and in vacuo).

Energy: by default the *interaction* energy (MACE's total minus its atomic reference
energies E0), as openmm-ml 1.8's default ``returnEnergyType="interaction_energy"``; option
``energy_type="energy"`` gives the total.  Charge: models with a ``total_charge`` embedding
(MACE-OMOL) receive the region's net charge; the others (MACE-OFF) are for neutral molecules.
Units: MACE works in angstrom and eV; positions are converted from nm, energies to kJ/mol.
"""
import copy
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..errors import InputFileError, ModelError
from .base import MLModel, ModelCapabilities, ModelFamily, SpecializingModel, check_precision, refuse_options
from .model_files import FixedRegionModule, all_pairs, dtype_of, find_model_file, import_family_package

_OFF24_URL = "https://github.com/ACEsuit/mace-off/blob/main/mace_off24/MACE-OFF24_medium.model?raw=true"
# openmm-ml 1.8's MACE names -> (mace's download function, its model argument); the short-ranged
# organic and materials models (openmm-ml's long-range MACE-LES/POLAR models are not adapted)
KNOWN_MODELS = {
    "mace-off23-small": ("mace_off", "small"),
    "mace-off23-medium": ("mace_off", "medium"),
    "mace-off23-large": ("mace_off", "large"),
    "mace-off24-medium": ("mace_off", _OFF24_URL),
    "mace-mpa-0-medium": ("mace_mp", "medium-mpa-0"),
    "mace-omat-0-small": ("mace_mp", "small-omat-0"),
    "mace-omat-0-medium": ("mace_mp", "medium-omat-0"),
    "mace-omol-0-extra-large": ("mace_omol", "extra_large"),
}
# MACE-OFF23/24 elements (their model cards)
MACE_OFF_ELEMENTS = [1, 6, 7, 8, 9, 15, 16, 17, 35, 53]
ENERGY_TYPES = ("interaction_energy", "energy")


class MACERegionModel(FixedRegionModule):
    """A scripted MACE model on one fixed ML region, the TorchScript module run inside OpenMM.

    ``forward(atomic_numbers, positions_nm, total_charge) -> energy_kJ_per_mol`` follows
    :mod:`openmm_hybrid.models.base`.  The graph's edges are the ordered pairs of region
    atoms closer than the cutoff, with zero periodic shifts.
    """

    r_max: float
    energy_key: str

    def __init__(self, model: torch.jit.ScriptModule, atomic_numbers: Sequence[int], element_table: Sequence[int],
                 r_max: float, energy_key: str, supports_charge: bool, dtype: torch.dtype):
        super().__init__(atomic_numbers, supports_charge)
        self.model = model
        index = torch.tensor([list(element_table).index(int(z)) for z in atomic_numbers], dtype=torch.int64)
        self.register_buffer("node_attrs", torch.nn.functional.one_hot(index, len(element_table)).to(dtype))
        first, second = all_pairs(len(atomic_numbers), torch.device("cpu"))
        self.register_buffer("first", first)
        self.register_buffer("second", second)
        self.r_max = float(r_max)
        self.energy_key = energy_key

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        self.check_atomic_numbers(atomic_numbers)
        pos = positions * self.nm_to_angstrom
        n = pos.shape[0]
        with torch.no_grad():
            distance = torch.linalg.vector_norm(pos[self.first] - pos[self.second], dim=1)
            within = distance < self.r_max
        edge_index = torch.stack([self.first[within], self.second[within]])
        shifts = torch.zeros((edge_index.shape[1], 3), dtype=pos.dtype, device=pos.device)
        data: Dict[str, torch.Tensor] = {
            "positions": pos,
            "node_attrs": self.node_attrs,
            "edge_index": edge_index,
            "shifts": shifts,
            "unit_shifts": shifts,
            "batch": torch.zeros(n, dtype=torch.int64, device=pos.device),
            "ptr": torch.tensor([0, n], dtype=torch.int64, device=pos.device),
            "cell": torch.zeros((3, 3), dtype=pos.dtype, device=pos.device),
            "pbc": torch.zeros(3, dtype=torch.bool, device=pos.device),
            "total_charge": total_charge.to(pos.dtype).reshape(1),
            "total_spin": torch.ones(1, dtype=pos.dtype, device=pos.device),
        }
        out = self.model(data, compute_force=False)
        energy = out[self.energy_key]
        assert energy is not None
        return energy.sum().to(torch.float64) * self.ev_to_kj_per_mol


class MACEModel(SpecializingModel):
    """A MACE model in the openmm-hybrid contract (compiled once, one graph per ML region)."""

    def __init__(self, scripted: torch.jit.ScriptModule, element_table: List[int], r_max: float, energy_key: str,
                 supports_charge: bool, dtype: torch.dtype):
        super().__init__()
        self.scripted = scripted
        self.element_table = list(element_table)
        self.r_max = r_max
        self.energy_key = energy_key
        self.supported_elements = list(element_table)
        self.supports_charge = supports_charge
        self.dtype = dtype

    def specialize(self, atomic_numbers) -> MACERegionModel:
        return MACERegionModel(self.scripted, [int(z) for z in atomic_numbers], self.element_table, self.r_max,
                               self.energy_key, self.supports_charge, self.dtype)


def _mace_package():
    # Importing mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for the whole process (e3nn 0.4.4 and
    # MACE's own files are pickled Python objects); see docs/models.md.
    return import_family_package("mace.calculators.foundations_models", "mace", "MACE")


def _published_url(function: str, argument: str) -> str:
    foundations = _mace_package()
    if argument.startswith("https:"):
        return argument
    if function == "mace_off":
        return foundations.mace_off_urls[argument]
    if function == "mace_mp":
        return foundations.mace_mp_urls[argument]
    # mace_omol keeps its single URL inside the function; its file name is fixed
    return "https://github.com/ACEsuit/mace-foundations/releases/download/mace_omol_0/" \
           "MACE-omol-0-extra-large-1024.model"


def resolve_mace_file(name: str) -> Path:
    """The published ``.model`` file of MACE model ``name`` (see :mod:`.model_files` for where)."""
    foundations = _mace_package()
    function, argument = KNOWN_MODELS[name]
    file_name = os.path.basename(_published_url(function, argument)).split("?")[0]
    cached = Path(import_family_package("mace.tools.utils", "mace", "MACE").get_cache_dir()) / file_name

    def download() -> str:
        getattr(foundations, function)(model=argument, device="cpu", return_raw_model=True)
        return str(cached)

    return find_model_file(name, file_name, cached, download, "mace-torch")


def load_mace(path, precision: str = "single", energy_type: str = "interaction_energy",
              name: Optional[str] = None) -> MLModel:
    """Load a MACE ``.model`` file as an :class:`MLModel` (compiled to TorchScript)."""
    check_precision(precision)
    if energy_type not in ENERGY_TYPES:
        raise ModelError(f"MACE energy_type must be one of {', '.join(ENERGY_TYPES)}, not {energy_type!r}")
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"MACE model file '{path}' does not exist")
    _mace_package()
    jit = import_family_package("e3nn.util.jit", "mace", "MACE")
    try:
        model = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"'{path}' is not a MACE model file ({exc})") from exc
    if not hasattr(model, "atomic_numbers") or not hasattr(model, "r_max"):
        raise ModelError(f"'{path}' does not hold a MACE model (no atomic_numbers / r_max): got "
                         f"{type(model).__name__}")
    dtype = dtype_of(precision)
    model = copy.deepcopy(model).to(dtype).eval()
    model.requires_grad_(False)
    elements = [int(z) for z in model.atomic_numbers]
    supports_charge = "total_charge" in (getattr(model, "embedding_specs", None) or {})
    try:
        scripted = jit.compile(model)
    except Exception as exc:
        raise ModelError(f"MACE model '{path}' ({type(model).__name__}) cannot be compiled to TorchScript "
                         f"({exc})") from exc
    module = MACEModel(scripted, elements, float(model.r_max), energy_type, supports_charge, dtype)
    return MLModel(name=name or str(path), module=module, precision=precision, supported_elements=elements,
                   supports_charge=supports_charge,
                   description=f"MACE {path.name} ({type(model).__name__}, {energy_type}), {precision} precision",
                   options={"file": str(path), "energy_type": energy_type})


class MACEFamily(ModelFamily):
    """MACE: openmm-ml's names (``mace-off23-small``, ``mace-off24-medium``, ...) and ``.model``
    files; option ``energy_type`` (``"interaction_energy"``, default, or ``"energy"``)."""

    names = tuple(KNOWN_MODELS)
    file_suffixes = (".model",)

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        refuse_options("MACE", options, accepted=("energy_type",))
        if spec in KNOWN_MODELS:
            return load_mace(resolve_mace_file(spec), precision, name=spec, **options)
        return load_mace(spec, precision, **options)

    def describe(self, spec: str, **options) -> ModelCapabilities:
        if spec.startswith("mace-off"):
            return ModelCapabilities(list(MACE_OFF_ELEMENTS), False)
        if spec == "mace-omol-0-extra-large":
            return ModelCapabilities(None, True)
        return super().describe(spec, **options)
