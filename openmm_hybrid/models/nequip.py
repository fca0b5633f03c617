"""NequIP and Allegro deployed models (the ``nequip`` package) as models following the contract.

Files: the TorchScript files NequIP and Allegro models are deployed as for LAMMPS, which hold
the whole model (everything but the neighbour list) and its metadata (``type_names``,
``r_max``, ``model_dtype``, ...) as TorchScript extra files:

- ``nequip-deploy build`` files of nequip 0.5 / 0.6 (NequIP, and Allegro models of
  ``nequip-allegro`` 0.3), usually named ``*.pth``;
- ``nequip-compile --mode torchscript`` files of nequip >= 0.7 (``*.nequip.pth``).

Both are read with ``torch.jit.load`` alone: the ``nequip`` package is not needed to run
them, and the module run inside OpenMM holds only PyTorch's own operators.  Not read:
nequip >= 0.7 checkpoints (``.ckpt``) and packages (``.nequip.zip``), which need nequip >= 0.7
to be rebuilt (turn them into a ``.nequip.pth`` with ``nequip-compile --mode torchscript``),
and AOTInductor files (``.nequip.pt2``, not TorchScript).

Graph: every ordered pair of region atoms closer than the model's ``r_max`` (all pairs are
searched: the region is small and in vacuo), as nequip's own neighbour list gives them for an
isolated molecule.  Allegro's per-edge-type cutoffs are applied by the model itself.

Forces: a deployed model computes its forces itself (autograd inside the module, whose graph
it does not keep), so :class:`NequIPRegionModel` returns an energy whose gradient with respect
to the positions *is* the model's force: ``E + (x0 . F - x . F)`` evaluated at ``x = x0``, with
``E``, ``F`` and ``x0 . F`` held constant (the bracket is zero in value, its gradient is ``-F``).

Atom types: the element of each nequip type, from the model's metadata: nequip 0.6's
``type_to_chemical_symbol`` (in the stored training config), else the ``type_names`` that are
chemical symbols.  Option ``atom_types`` (one nequip type index per ML atom, in region order,
as openmm-ml's ``atomTypes``) overrides this for models trained with other type names.

Units: options ``length_scale`` (nm per model length unit, default 0.1: angstrom) and
``energy_scale`` (kJ/mol per model energy unit, default 1 eV), as openmm-ml 1.8's ``nequip``
potential's ``lengthScale`` / ``energyScale``.  NequIP models take no total charge: a charged
region is refused.
"""
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
import yaml
from openmm.app import element as elements

from ..errors import InputFileError, ModelError
from .base import MLModel, ModelCapabilities, ModelFamily, SpecializingModel, check_precision, refuse_options
from .model_files import EV_TO_KJ_PER_MOL, FixedRegionModule, all_pairs, dtype_of

# the metadata (TorchScript extra files) nequip writes next to a deployed or compiled model
METADATA_KEYS = ("type_names", "r_max", "model_dtype", "default_dtype", "nequip_version", "config")
COMPILED_SUFFIX = ".nequip.pth"
AOTI_SUFFIX = ".nequip.pt2"


class NequIPRegionModel(FixedRegionModule):
    """A deployed NequIP / Allegro model on one fixed ML region, the TorchScript module run in OpenMM.

    ``forward(atomic_numbers, positions_nm, total_charge) -> energy_kJ_per_mol`` follows
    :mod:`openmm_hybrid.models.base`; the energy's gradient is the model's own force (see the
    module docstring).
    """

    r_max: float
    length_scale: float
    energy_scale: float

    def __init__(self, model: torch.jit.ScriptModule, atomic_numbers: Sequence[int], atom_types: Sequence[int],
                 r_max: float, length_scale: float, energy_scale: float):
        super().__init__(atomic_numbers, supports_charge=False)
        self.model = model
        self.register_buffer("atom_types", torch.tensor(list(atom_types), dtype=torch.int64))
        first, second = all_pairs(len(atomic_numbers), torch.device("cpu"))
        self.register_buffer("first", first)
        self.register_buffer("second", second)
        self.r_max = float(r_max)
        self.length_scale = float(length_scale)
        self.energy_scale = float(energy_scale)

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        self.check_atomic_numbers(atomic_numbers)
        # Graph-free copies are made under no_grad or with float(), not with detach(): freezing the
        # module (as TorchModuleForce does) removes aten::detach, and the model's own autograd
        # frees the graph behind its energy.
        pos = torch.empty_like(positions)
        with torch.no_grad():
            pos.copy_(positions / self.length_scale)  # a leaf: the model differentiates with respect to it
            distance = torch.linalg.vector_norm(pos[self.first] - pos[self.second], dim=1)
            within = distance < self.r_max
        data: Dict[str, torch.Tensor] = {
            "pos": pos,
            "edge_index": torch.stack([self.first[within], self.second[within]]),
            "atom_types": self.atom_types,
        }
        out = self.model(data)
        energy = float(out["total_energy"].sum())
        with torch.no_grad():
            forces = out["forces"].to(torch.float64).clone()
        work = (positions.to(torch.float64) * forces).sum()
        # `work_here - work` is zero in value; its gradient with respect to the positions is minus the
        # model's force.  (float() keeps the value only: the JIT merges equal expressions across a
        # no_grad block, so the constant must not be a second copy of the same expression.)
        work_here = float(work)
        return (work_here - work) * (self.energy_scale / self.length_scale) + energy * self.energy_scale


class NequIPModel(SpecializingModel):
    """A deployed NequIP / Allegro model in the openmm-hybrid contract (one graph per ML region)."""

    def __init__(self, model: torch.jit.ScriptModule, type_of_element: Dict[int, int], r_max: float,
                 length_scale: float, energy_scale: float, atom_types: Optional[List[int]] = None):
        super().__init__()
        self.model = model
        self.type_of_element = dict(type_of_element)
        self.r_max = r_max
        self.length_scale = length_scale
        self.energy_scale = energy_scale
        self.atom_types = None if atom_types is None else [int(t) for t in atom_types]
        self.supported_elements = None if atom_types is not None else sorted(type_of_element)
        self.supports_charge = False

    def specialize(self, atomic_numbers) -> NequIPRegionModel:
        atomic_numbers = [int(z) for z in atomic_numbers]
        if self.atom_types is not None:
            if len(self.atom_types) != len(atomic_numbers):
                raise ModelError(f"atom_types gives {len(self.atom_types)} nequip types, but the ML region has "
                                 f"{len(atomic_numbers)} atoms: give one type per ML atom, in region order")
            types = self.atom_types
        else:
            missing = sorted({z for z in atomic_numbers} - set(self.type_of_element))
            if missing:
                raise ModelError(f"the NequIP model has no atom type for atomic number(s) "
                                 f"{', '.join(map(str, missing))}; give atom_types")
            types = [self.type_of_element[z] for z in atomic_numbers]
        return NequIPRegionModel(self.model, atomic_numbers, types, self.r_max, self.length_scale,
                                 self.energy_scale)


def read_nequip_metadata(path) -> Optional[Dict[str, str]]:
    """The nequip metadata of a TorchScript file (``type_names``, ``r_max``, ...), read without
    loading the model; ``None`` when the file is not a deployed or compiled nequip model."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        entries = {}
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) == 3 and parts[1] == "extra" and parts[2] in METADATA_KEYS:
                entries[parts[2]] = archive.read(name).decode("utf-8", errors="replace")
    if "type_names" not in entries or "r_max" not in entries:
        return None
    return entries


class _ConfigLoader(yaml.SafeLoader):
    """Reads nequip's stored training config: its Python tags (tuples, ...) become plain values."""


_ConfigLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: loader.construct_sequence(node)
    if isinstance(node, yaml.SequenceNode) else None)


def element_types(metadata: Dict[str, str]) -> Dict[int, int]:
    """Atomic number -> nequip type index, from the model's metadata.

    nequip 0.6 stores ``type_to_chemical_symbol`` in its training config; otherwise the type
    names that are chemical symbols name their element.  An element named by two types is
    left out (ambiguous: the option ``atom_types`` tells them apart).
    """
    type_names = metadata["type_names"].split()
    symbols = {i: name for i, name in enumerate(type_names)}
    config = metadata.get("config")
    if config:
        try:
            stored = (yaml.load(config, Loader=_ConfigLoader) or {}).get("type_to_chemical_symbol")
        except yaml.YAMLError:
            stored = None
        if isinstance(stored, dict) and stored:
            symbols = {int(i): str(symbol) for i, symbol in stored.items()}
    types_of: Dict[int, List[int]] = {}
    for index, symbol in symbols.items():
        try:
            z = elements.Element.getBySymbol(symbol).atomic_number
        except KeyError:
            continue
        types_of.setdefault(z, []).append(index)
    return {z: types[0] for z, types in types_of.items() if len(types) == 1}


# attributes holding the dtype nequip computes its features in (nequip 0.6: model_dtype; >= 0.7 also
# _output_dtype of the edge encodings), and the dtype of its final energy sums (0.6: default_dtype,
# >= 0.7: out_dtype of the per-type scale and shift), which nequip keeps float64 by default
NETWORK_DTYPE_ATTRIBUTES = ("model_dtype", "_output_dtype")
ENERGY_DTYPE_ATTRIBUTES = ("default_dtype", "out_dtype")
# TorchScript hands dtype attributes to Python as these ScalarType codes
SCALAR_TYPES = {6: torch.float32, 7: torch.float64}


def _dtype_attribute(module, attribute: str) -> Optional[torch.dtype]:
    value = getattr(module, attribute, None)
    return SCALAR_TYPES.get(value) if isinstance(value, int) else value if isinstance(value, torch.dtype) else None


def use_precision(model: torch.jit.ScriptModule, dtype: torch.dtype) -> torch.jit.ScriptModule:
    """The deployed model in ``dtype``: its parameters and buffers, and the dtype nequip casts its
    inputs and features to.  The final energy sums keep the file's dtype (float64 by nequip's
    default), as nequip evaluates them, except that a float64 network needs them float64."""
    model = model.to(dtype)
    for _, module in model.named_modules():
        for attribute in NETWORK_DTYPE_ATTRIBUTES:
            if _dtype_attribute(module, attribute) is not None:
                setattr(module, attribute, dtype)
        for attribute in ENERGY_DTYPE_ATTRIBUTES:
            if dtype == torch.float64 and _dtype_attribute(module, attribute) == torch.float32:
                setattr(module, attribute, dtype)
    return model


def load_nequip(path, precision: str = "single", length_scale: float = 0.1,
                energy_scale: float = EV_TO_KJ_PER_MOL, atom_types: Optional[Sequence[int]] = None,
                name: Optional[str] = None) -> MLModel:
    """Load a deployed (``nequip-deploy``) or compiled (``nequip-compile --mode torchscript``)
    NequIP / Allegro file as an :class:`MLModel`.

    Parameters
    ----------
    path : str or Path
        The TorchScript file.
    precision : {"single", "double"}
        float32 or float64 evaluation of the network (see :func:`use_precision`).
    length_scale : float
        nm per model length unit (0.1: angstrom).
    energy_scale : float
        kJ/mol per model energy unit (default 1 eV; 4.184 for kcal/mol).
    atom_types : sequence of int, optional
        One nequip type index per ML atom, in region order; default: from the model's
        metadata (type names that are chemical symbols).
    """
    check_precision(precision)
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"NequIP model file '{path}' does not exist")
    if str(path).lower().endswith(AOTI_SUFFIX):
        raise ModelError(f"'{path}' is an AOTInductor file (nequip-compile --mode aotinductor), which cannot run "
                         f"inside TorchScript: compile the model with `nequip-compile --mode torchscript` to a "
                         f"{COMPILED_SUFFIX} file")
    metadata = read_nequip_metadata(path)
    if metadata is None:
        raise ModelError(f"'{path}' is not a deployed NequIP/Allegro model (a TorchScript file with nequip's "
                         f"type_names and r_max metadata, written by `nequip-deploy build` or `nequip-compile "
                         f"--mode torchscript`); nequip >= 0.7 checkpoints and .nequip.zip packages must be "
                         f"compiled first: nequip-compile --mode torchscript MODEL out{COMPILED_SUFFIX}")
    if length_scale <= 0 or energy_scale <= 0:
        raise ModelError(f"NequIP length_scale and energy_scale must be positive (got {length_scale}, "
                         f"{energy_scale})")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelError(f"'{path}' cannot be loaded by torch.jit.load ({exc})") from exc
    model = use_precision(model.eval(), dtype_of(precision))
    type_of_element = element_types(metadata)
    if not type_of_element and atom_types is None:
        raise ModelError(f"the type names of NequIP model '{path}' ({metadata['type_names']}) are not chemical "
                         f"symbols: give atom_types (one nequip type index per ML atom)")
    r_max = float(metadata["r_max"])
    module = NequIPModel(model, type_of_element, r_max, length_scale, energy_scale, atom_types)
    version = metadata.get("nequip_version") or (">= 0.7" if str(path).endswith(COMPILED_SUFFIX) else "unknown")
    return MLModel(name=name or str(path), module=module, precision=precision,
                   supported_elements=module.supported_elements, supports_charge=False,
                   description=f"NequIP/Allegro {path.name} (nequip {version}, r_max {r_max:g}, trained in "
                               f"{metadata.get('model_dtype') or 'float32'}), {precision} precision",
                   options={"file": str(path), "length_scale": length_scale, "energy_scale": energy_scale,
                            **({"atom_types": list(atom_types)} if atom_types is not None else {})})


class NequIPFamily(ModelFamily):
    """NequIP / Allegro deployed models: ``nequip-deploy`` TorchScript files (nequip 0.5/0.6) and
    ``nequip-compile --mode torchscript`` files (``*.nequip.pth``, nequip >= 0.7); options
    ``length_scale``, ``energy_scale``, ``atom_types``.  (openmm-ml 1.8 names no NequIP model:
    the file is the model.)"""

    file_suffixes = (COMPILED_SUFFIX, AOTI_SUFFIX)
    options = ("length_scale", "energy_scale", "atom_types")

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        refuse_options("NequIP", options, accepted=self.options)
        return load_nequip(spec, precision, **options)

    def claims_file(self, path: str) -> bool:
        return super().claims_file(path) or read_nequip_metadata(path) is not None

    def describe(self, spec: str, **options) -> ModelCapabilities:
        metadata = read_nequip_metadata(spec)
        if metadata is None:
            return ModelCapabilities(None, False)
        return ModelCapabilities(sorted(element_types(metadata)) or None, False)
