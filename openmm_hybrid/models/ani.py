"""ANI-2x as a TorchScript model following the openmm-hybrid contract.

The weights come from torchani; the evaluation is openmm-hybrid's own, built for one ML
region at a time (:meth:`ANI2xModel.specialize`): the region's elements are fixed, so

- the AEV (:class:`~openmm_hybrid.models.aev.ANIAEV`) precomputes its pair indices and
  computes only the features the region's elements can make non-zero (H and C only: 128 of
  1008), and the first layer of every network keeps only the matching weight rows;
- only the networks of the elements present are kept (the TorchScript module stored in a
  system.xml holds nothing else);
- the eight ensemble members of an element are evaluated together: their shared first
  layer as one matrix product, the later layers as batched matrix products (as torchani's
  ``BmmEnsemble``), then averaged; the self energies are added in float64.

Energies and forces equal torchani's to floating-point round-off (tests/test_ml_model.py,
tests/test_ani_aev.py).

Weights are loaded the normal torchani way (``torchani.models.ANI2x()``, which uses
``$TORCHANI_DATA_DIR/StateDicts`` and downloads into it if needed), or offline from
torchani's legacy NeuroChem files when ``$TORCHANI_DATA_DIR/Neurochem/ani-2x_8x.info``
exists and no state dict has been downloaded.
"""
import copy
import functools
import os
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from ..errors import ModelError
from .aev import ANGULAR_CUTOFF, ANI2X_SYMBOLS, RADIAL_CUTOFF, ANIAEV, ani2x_species_slots
from .base import MLModel, ModelCapabilities, ModelFamily, check_precision, refuse_options

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

    The weights are read once per process and data directory (reading the NeuroChem files takes
    seconds); every call returns its own copy, so callers may change it.

    Parameters
    ----------
    model_index : int, optional
        Use a single network (0-7) of the eight-network ensemble.

    Returns
    -------
    torchani.arch.ANI
        With ``periodic_table_index=True`` (species given as atomic numbers).
    """
    if model_index is not None and not 0 <= int(model_index) < 8:
        raise ModelError(f"ANI-2x model_index must be between 0 and 7, not {model_index}")
    return copy.deepcopy(_read_torchani_ani2x(None if model_index is None else int(model_index),
                                              str(torchani_data_dir())))


@functools.lru_cache(maxsize=None)
def _read_torchani_ani2x(model_index: Optional[int], data_dir: str):
    torchani = _torchani()
    info = neurochem_info_file()
    state_dict = Path(data_dir) / "StateDicts" / "ani2x_state_dict.pt"
    if info is not None and not state_dict.is_file():
        model = torchani.neurochem.load_model_from_info_file(str(info), model_index=model_index,
                                                             periodic_table_index=True)
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


class _BatchedLinear(torch.nn.Module):
    """One hidden layer of all ensemble members: ``(M, atoms, in) -> (M, atoms, out)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)  # (M, in, out)
        self.register_buffer("bias", bias)  # (M, 1, out)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, features, self.weight)


class _ElementEnsemble(torch.nn.Module):
    """The networks of one element, all ensemble members at once (as torchani's BmmEnsemble).

    The first layer of all M members is one matrix product ``(atoms, F) @ (F, M * H1)``
    (its input is shared); its weights keep only the ``F`` AEV features the region can make
    non-zero.  The energy returned is the sum over this element's atoms of the member mean,
    in hartree.
    """

    num_members: int
    first_width: int

    def __init__(self, atoms: Sequence[int], layers: List[List[Tuple[torch.Tensor, torch.Tensor]]],
                 features: torch.Tensor):
        super().__init__()
        # layers[m][k] = (weight (out, in), bias (out,)) of member m's layer k, torch.nn.Linear layout
        self.num_members = len(layers)
        self.register_buffer("atoms", torch.tensor(list(atoms), dtype=torch.int64))
        first = [w.index_select(1, features) for w, _ in (member[0] for member in layers)]
        self.first_width = first[0].shape[0]
        self.register_buffer("first_weight", torch.cat([w.t() for w in first], dim=1).contiguous())  # (F, M*H1)
        self.register_buffer("first_bias", torch.cat([member[0][1] for member in layers]).contiguous())
        hidden = []
        for k in range(1, len(layers[0])):
            weight = torch.stack([member[k][0].t() for member in layers]).contiguous()  # (M, in, out)
            bias = torch.stack([member[k][1].view(1, -1) for member in layers]).contiguous()  # (M, 1, out)
            hidden.append(_BatchedLinear(weight, bias))
        self.layers = torch.nn.ModuleList(hidden[:-1])
        self.final_layer = hidden[-1]

    def forward(self, aev: torch.Tensor) -> torch.Tensor:
        x = aev.index_select(0, self.atoms)
        h = torch.nn.functional.celu(torch.addmm(self.first_bias, x, self.first_weight), alpha=0.1)
        h = h.view(x.shape[0], self.num_members, self.first_width).transpose(0, 1)  # (M, atoms, H1)
        for layer in self.layers:
            h = torch.nn.functional.celu(layer(h), alpha=0.1)
        return self.final_layer(h).sum() / self.num_members


class ANI2xRegionModel(torch.nn.Module):
    """ANI-2x for one fixed ML region: the TorchScript module openmm-hybrid runs in OpenMM.

    Made by :meth:`ANI2xModel.specialize`.  It holds only what the region's elements need:
    an :class:`~openmm_hybrid.models.aev.ANIAEV` over the elements present (for a region of
    H and C, 128 of ANI-2x's 1008 features; the others are identically zero), the networks
    of those elements with their first layers cut to the same features, and the summed
    self energies.  Energies equal torchani's to floating-point round-off.

    ``forward(atomic_numbers, positions_nm, total_charge) -> energy_kJ_per_mol`` follows the
    contract of :mod:`openmm_hybrid.models.base`; ``atomic_numbers`` must be the region's
    (checked).  The self energy is added in float64 after the network energy.
    """

    supported_elements: List[int]
    supports_charge: bool
    self_energy_kjmol: float
    hartree_to_kjmol: float

    def __init__(self, atomic_numbers: Sequence[int], aev: ANIAEV, networks: List[_ElementEnsemble],
                 self_energy_kjmol: float, hartree_to_kjmol: float):
        super().__init__()
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.int64))
        self.aev = aev
        self.networks = torch.nn.ModuleList(networks)
        self.self_energy_kjmol = float(self_energy_kjmol)
        self.hartree_to_kjmol = float(hartree_to_kjmol)
        self.supported_elements = sorted({int(z) for z in atomic_numbers})
        self.supports_charge = False

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        if not torch.equal(atomic_numbers, self.atomic_numbers):
            raise RuntimeError("ANI2xRegionModel: atomic_numbers differ from the region it was built for")
        aev = self.aev(positions * 10.0)  # nm -> angstrom
        energy = torch.zeros((), dtype=positions.dtype, device=positions.device)
        for network in self.networks:
            energy = energy + network(aev)
        return energy.to(torch.float64) * self.hartree_to_kjmol + self.self_energy_kjmol


class ANI2xModel(torch.nn.Module):
    """ANI-2x energy of a molecule, in the openmm-hybrid model contract.

    Holds the weights of torchani's ANI-2x (ensemble or one network) and its self energies.
    :meth:`specialize` builds the TorchScript-able :class:`ANI2xRegionModel` for a given
    region, which is what runs in OpenMM; calling this module directly (eager Python)
    specializes for the given atomic numbers on the fly.

    Parameters
    ----------
    ani : torchani.arch.ANI
        torchani's ANI-2x (``periodic_table_index=True``), an ``Ensemble`` of networks or a
        single network (``model_index``).
    dtype : torch.dtype
        float32 or float64; weights are converted.
    """

    supported_elements: List[int]
    supports_charge: bool

    def __init__(self, ani, dtype: torch.dtype = torch.float32):
        super().__init__()
        torchani = _torchani()
        symbols = tuple(ani.symbols)
        if symbols != ANI2X_SYMBOLS:
            raise ModelError(f"expected an ANI-2x model with elements {ANI2X_SYMBOLS}, got {symbols}")
        _check_aev_constants(ani.aev_computer)
        networks = ani.nnp.neural_networks
        members = list(networks.members) if hasattr(networks, "members") else [networks]
        self.dtype = dtype
        # weights[symbol][m] = [(weight, bias) per layer], torch.nn.Linear layout, in dtype
        self.weights = {}
        for symbol in symbols:
            per_member = []
            for member in members:
                atomic = member.atomics[symbol]
                if not isinstance(atomic.activation, torchani.nn.TightCELU):
                    raise ModelError(f"ANI-2x {symbol} network: expected TightCELU activations, "
                                     f"got {type(atomic.activation).__name__}")
                layers = list(atomic.layers) + [atomic.final_layer]
                per_member.append([(layer.weight.detach().to(dtype), layer.bias.detach().to(dtype))
                                   for layer in layers])
            self.weights[symbol] = per_member
        # torchani stores the self energies (hartree) in float32; keep those values exactly
        self.self_energies = [float(e) for e in ani.energy_shifter.self_energies.detach().float()]
        self.num_members = len(members)
        self.hartree_to_kjmol = float(torchani.units.hartree2kjoulemol(1.0))
        self.supported_elements = list(ANI2X_ELEMENTS)
        self.supports_charge = False
        self._specialized = {}

    def specialize(self, atomic_numbers) -> ANI2xRegionModel:
        """The TorchScript-able model of a region with these atomic numbers (in region order).

        It holds only the networks of the elements present, with first layers reduced to the
        AEV features those elements can make non-zero, so the TorchScript module stored in a
        system.xml is much smaller than the full ensemble (ANI-2x: about 2.5 M parameters per
        element before pruning).
        """
        atomic_numbers = [int(z) for z in atomic_numbers]
        try:
            species = ani2x_species_slots(atomic_numbers)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        aev = ANIAEV(species, dtype=self.dtype)
        networks = []
        for slot in sorted(set(species)):
            atoms = [i for i, s in enumerate(species) if s == slot]
            networks.append(_ElementEnsemble(atoms, self.weights[ANI2X_SYMBOLS[slot]], aev.feature_index))
        self_energy = sum(self.self_energies[s] for s in species) * self.hartree_to_kjmol
        return ANI2xRegionModel(atomic_numbers, aev, networks, self_energy, self.hartree_to_kjmol)

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        key = tuple(int(z) for z in atomic_numbers)
        if key not in self._specialized:
            self._specialized = {key: self.specialize(key)}  # keep the latest region only
        return self._specialized[key](atomic_numbers, positions, total_charge)


def _check_aev_constants(aev_computer) -> None:
    """Refuse a torchani AEV computer whose hyper-parameters are not ANI-2x's (ANIAEV's)."""
    reference = ANIAEV([0], species_slots=list(range(7)))
    mine = {"radial.eta": reference.radial_eta, "radial.shifts": reference.radial_shifts,
            "angular.eta": reference.angular_eta, "angular.zeta": reference.angular_zeta,
            "angular.shifts": reference.angular_shifts}
    theirs = dict(aev_computer.state_dict())
    ok = all(torch.equal(theirs[k].float().view(-1), v.view(-1)) for k, v in mine.items())
    ok = ok and float(aev_computer.radial.cutoff) == RADIAL_CUTOFF
    ok = ok and float(aev_computer.angular.cutoff) == ANGULAR_CUTOFF
    ok = ok and type(aev_computer.angular.cutoff_fn).__name__ == "CutoffCosine"
    if not ok:
        raise ModelError("the torchani model's AEV hyper-parameters are not ANI-2x's")


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


class ANI2xFamily(ModelFamily):
    """ANI-2x (torchani weights, openmm-hybrid's evaluation); option ``model_index`` (0-7)."""

    names = ("ani2x",)

    def load(self, spec: str, precision: str = "single", **options) -> MLModel:
        refuse_options("ANI-2x", options, accepted=("model_index",))
        return load_ani2x(precision=precision, **options)

    def describe(self, spec: str, **options) -> ModelCapabilities:
        """ANI-2x's elements (H C N O F S Cl), neutral molecules only; no weights are read."""
        refuse_options("ANI-2x", {k: v for k, v in options.items() if k != "precision"}, accepted=("model_index",))
        return ModelCapabilities(list(ANI2X_ELEMENTS), False)
