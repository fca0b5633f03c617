"""ANI-2x atomic environment vectors (AEVs) for a fixed set of atoms.

:class:`ANIAEV` computes the same features as torchani 2.9's ``AEVComputer.like_2x()``
(the ANI-2x hyper-parameters, cosine cutoff), for one molecule whose atoms and species are
fixed when the module is built.  That lets it precompute every index it needs (the atom
pairs, the slot each neighbour contributes to) and skip the work torchani does for general
batches, and, with the default layout, leave out the features that are identically zero
because an element is absent.

Definition (torchani / NeuroChem, distances in angstrom)::

    f_c(r; R_c)  = 0.5 cos(pi r / R_c) + 0.5  for r <= R_c, else 0
    radial      G_R[i, s, k]    = sum_{j != i, species(j) = s}
                                      0.25 exp(-19.7 (r_ij - ShfR_k)^2) f_c(r_ij; 5.1)
    angular     G_A[i, {s,t}, 4a+b] = sum_{j < k, j,k != i, {species(j), species(k)} = {s,t}}
                                      2 ((1 + cos(theta_ijk - ShfZ_b)) / 2)^14.1
                                      exp(-12.5 ((r_ij + r_ik)/2 - ShfA_a)^2)
                                      f_c(r_ij; 3.5) f_c(r_ik; 3.5)
    with theta_ijk = arccos(0.95 cos(angle j-i-k)),
    ShfR_k = 0.8 + k (5.1 - 0.8)/16 (k = 0..15), ShfA_a = 0.8 + a (3.5 - 0.8)/8 (a = 0..7),
    ShfZ_b = pi/8 + b pi/4 (b = 0..3); the constants are rounded to float32 as torchani
    stores them.

Species slots are ANI-2x's element order ``H C N O S F Cl`` = 0..6 (EMLE's H C N O S are
slots 0..4).  The full layout (``species_slots=range(7)``, 1008 features) is torchani's:
radial blocks of 16 per slot, slot-major, then angular blocks of 32 per unordered slot pair
``(s <= t)`` in row-major upper-triangle order, each indexed ``4a + b``.  A layout over a
subset of slots (the default: the slots present in the molecule) keeps the same order, so
it is a subsequence of the full one; :attr:`ANIAEV.feature_index` gives each output
feature's column in the full layout, and every full-layout column not listed is exactly
zero for this molecule.

The cos(theta - ShfZ) factor is evaluated as ``0.95 c cos(ShfZ) + sqrt(1 - (0.95 c)^2)
sin(ShfZ)``, which equals torchani's ``cos(arccos(0.95 c) - ShfZ)`` (arccos lies in
[0, pi], so its sine is the non-negative root); results agree to floating-point round-off.
"""
import math
from typing import List, Optional, Sequence

import torch

# ANI-2x element order (torchani.models.ANI2x().symbols) and the atomic numbers of its slots.
ANI2X_SYMBOLS = ("H", "C", "N", "O", "S", "F", "Cl")
ANI2X_ATOMIC_NUMBERS = (1, 6, 7, 8, 16, 9, 17)

RADIAL_CUTOFF = 5.1  # angstrom
ANGULAR_CUTOFF = 3.5  # angstrom
RADIAL_ETA = 19.7  # 1/angstrom^2
ANGULAR_ETA = 12.5  # 1/angstrom^2
ANGULAR_ZETA = 14.1
NUM_RADIAL_SHIFTS = 16
NUM_ANGULAR_SHIFTS = 8
NUM_ANGULAR_SECTIONS = 4
RADIAL_START = 0.8  # angstrom
ANGULAR_START = 0.8  # angstrom

def _linspace(start: float, stop: float, steps: int) -> List[float]:
    # as torchani.utils.linspace (pure Python, then stored as float32)
    return [start + ((stop - start) / steps) * j for j in range(steps)]


def ani2x_species_slots(atomic_numbers: Sequence[int]) -> List[int]:
    """ANI-2x species slot (0..6 for H C N O S F Cl) of each atomic number.

    Raises
    ------
    ValueError
        For an element ANI-2x does not describe.
    """
    slot = {z: i for i, z in enumerate(ANI2X_ATOMIC_NUMBERS)}
    bad = sorted({int(z) for z in atomic_numbers} - set(slot))
    if bad:
        raise ValueError(f"atomic number(s) {bad} have no ANI-2x species slot (H C N O S F Cl only)")
    return [slot[int(z)] for z in atomic_numbers]


class ANIAEV(torch.nn.Module):
    """ANI-2x AEVs of a fixed molecule, optionally restricted to the species it contains.

    Parameters
    ----------
    species : sequence of int
        Species slot of each atom (0..``num_species``-1; ANI-2x: 0..6 = H C N O S F Cl, see
        :func:`ani2x_species_slots`).
    species_slots : sequence of int, optional
        Slots whose radial blocks and slot-pair angular blocks make up the output layout,
        in increasing order.  Default: the slots present in ``species`` (all other features
        are identically zero).  ``range(7)`` gives torchani's full 1008-feature layout.
    num_species : int
        Number of slots of the full layout (7 for ANI-2x).
    dtype : torch.dtype
        float32 or float64; the constants are torchani's float32 values converted to it.

    Notes
    -----
    ``forward(coordinates)`` takes the coordinates of the atoms, **in angstrom**, shape
    ``(n, 3)``, in the order of ``species`` (a single molecule in vacuo: no periodic images),
    and returns the AEVs, shape ``(n, out_dim)``, row ``i`` for atom ``i``, columns in the
    layout described in the module docstring.  It is differentiable with respect to the
    coordinates and can be compiled with ``torch.jit.script``.

    Attributes
    ----------
    out_dim : int
        Number of features (16 per slot + 32 per unordered slot pair of the layout).
    feature_index : Tensor
        int64 ``(out_dim,)``: column of each feature in the full ``num_species`` layout.
    """

    num_atoms: int
    num_slots: int
    num_slot_pairs: int
    out_dim: int
    radial_cutoff: float
    angular_cutoff: float

    def __init__(self, species: Sequence[int], species_slots: Optional[Sequence[int]] = None,
                 num_species: int = 7, dtype: torch.dtype = torch.float32):
        super().__init__()
        species = [int(s) for s in species]
        if any(not 0 <= s < num_species for s in species):
            raise ValueError(f"species slots must lie in 0..{num_species - 1}, got {sorted(set(species))}")
        if species_slots is None:
            species_slots = sorted(set(species))
        species_slots = [int(s) for s in species_slots]
        if species_slots != sorted(set(species_slots)) or any(not 0 <= s < num_species for s in species_slots):
            raise ValueError(f"species_slots must be increasing slots in 0..{num_species - 1}, got {species_slots}")
        missing = sorted(set(species) - set(species_slots))
        if missing:
            raise ValueError(f"species slot(s) {missing} of the molecule are not in species_slots {species_slots}")
        n = len(species)
        num_slots = len(species_slots)
        local = {s: i for i, s in enumerate(species_slots)}
        slot_of_atom = torch.tensor([local[s] for s in species], dtype=torch.int64)

        self.num_atoms = n
        self.num_slots = num_slots
        self.num_slot_pairs = num_slots * (num_slots + 1) // 2
        self.out_dim = NUM_RADIAL_SHIFTS * num_slots + 32 * self.num_slot_pairs
        self.radial_cutoff = RADIAL_CUTOFF
        self.angular_cutoff = ANGULAR_CUTOFF

        # constants, rounded to float32 as torchani stores them
        def const(values):
            return torch.tensor(values, dtype=torch.float32).to(dtype)

        self.register_buffer("radial_eta", const([RADIAL_ETA]))
        self.register_buffer("radial_shifts", const(_linspace(RADIAL_START, RADIAL_CUTOFF, NUM_RADIAL_SHIFTS)))
        self.register_buffer("angular_eta", const([ANGULAR_ETA]))
        self.register_buffer("angular_zeta", const([ANGULAR_ZETA]))
        self.register_buffer("angular_shifts",
                             const(_linspace(ANGULAR_START, ANGULAR_CUTOFF, NUM_ANGULAR_SHIFTS)))
        sections = const(_linspace(math.pi / NUM_ANGULAR_SECTIONS / 2,
                                   math.pi + math.pi / NUM_ANGULAR_SECTIONS / 2, NUM_ANGULAR_SECTIONS))
        # 0.5 cos(ShfZ), 0.5 sin(ShfZ): ((1 + cos(theta - ShfZ)) / 2) = 0.5 + cos(theta) 0.5 cos(ShfZ)
        # + sin(theta) 0.5 sin(ShfZ)
        self.register_buffer("half_cos_sections", 0.5 * torch.cos(sections))
        self.register_buffer("half_sin_sections", 0.5 * torch.sin(sections))

        # unordered pairs i < j (row-major, as torchani); diff = x[j] - x[i]
        pairs = torch.triu_indices(n, n, 1) if n > 1 else torch.zeros((2, 0), dtype=torch.int64)
        self.register_buffer("pair_i", pairs[0].clone())
        self.register_buffer("pair_j", pairs[1].clone())
        # radial scatter targets: column (atom i, slot of j) and (atom j, slot of i) of the (16, n * slots) sums
        self.register_buffer("radial_index_i", pairs[0] * num_slots + slot_of_atom[pairs[1]])
        self.register_buffer("radial_index_j", pairs[1] * num_slots + slot_of_atom[pairs[0]])

        # directed neighbour entries (centre c, other o), sorted by centre: pair index and the
        # sign turning diff into x[o] - x[c]
        num_pairs = pairs.shape[1]
        pair_id = torch.full((n, n), -1, dtype=torch.int64)
        if num_pairs:
            pair_id[pairs[0], pairs[1]] = torch.arange(num_pairs)
            pair_id[pairs[1], pairs[0]] = torch.arange(num_pairs)
        centre, other = [], []
        for c in range(n):
            for o in range(n):
                if o != c:
                    centre.append(c)
                    other.append(o)
        centre = torch.tensor(centre, dtype=torch.int64)
        other = torch.tensor(other, dtype=torch.int64)
        self.register_buffer("entry_centre", centre)
        self.register_buffer("entry_pair", pair_id[centre, other])
        self.register_buffer("entry_sign", torch.where(centre < other, 1.0, -1.0).to(dtype))
        self.register_buffer("entry_other_slot", slot_of_atom[other])
        pair_table = torch.zeros((num_slots, num_slots), dtype=torch.int64)
        rows, cols = torch.triu_indices(num_slots, num_slots)
        pair_table[rows, cols] = torch.arange(rows.shape[0])
        pair_table[cols, rows] = torch.arange(rows.shape[0])
        self.register_buffer("slot_pair_table", pair_table.reshape(-1))

        # column of each feature in the full num_species layout
        full_pairs = {}
        for a in range(num_species):
            for b in range(a, num_species):
                full_pairs[(a, b)] = len(full_pairs)
        index = [NUM_RADIAL_SHIFTS * s + k for s in species_slots for k in range(NUM_RADIAL_SHIFTS)]
        for a in range(num_slots):
            for b in range(a, num_slots):
                base = NUM_RADIAL_SHIFTS * num_species + 32 * full_pairs[(species_slots[a], species_slots[b])]
                index.extend(base + f for f in range(32))
        self.register_buffer("feature_index", torch.tensor(index, dtype=torch.int64))

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        n = self.num_atoms
        # component-major (3, P) layout: reductions over the 3 components are then
        # elementwise operations on rows, far faster than reducing a trailing size-3 axis
        x = coordinates.t()
        diff = x.index_select(1, self.pair_j) - x.index_select(1, self.pair_i)  # (3, P)
        dist = torch.linalg.vector_norm(diff, dim=0)  # (P,)

        # Terms are built feature-major, (features, pairs or triples): the broadcasts'
        # backward passes then reduce over leading axes, which vectorizes (reducing a
        # trailing axis of 4 or 8 is several times slower on CPU).
        # radial: 0.25 exp(-eta (r - ShfR)^2) f_c(r), zero beyond the cutoff
        fc_radial = torch.where(dist <= self.radial_cutoff,
                                0.125 * torch.cos(dist * (math.pi / self.radial_cutoff)) + 0.125,
                                torch.zeros_like(dist))  # 0.25 f_c
        radial_terms = torch.exp(-self.radial_eta.view(1, 1) * (dist - self.radial_shifts.view(-1, 1)) ** 2)
        radial_terms = radial_terms * fc_radial  # (16, P)
        radial = dist.new_zeros((radial_terms.shape[0], n * self.num_slots))
        radial = radial.index_add(1, self.radial_index_i, radial_terms)
        radial = radial.index_add(1, self.radial_index_j, radial_terms)
        radial = radial.view(-1, n, self.num_slots).permute(1, 2, 0).reshape(n, -1)

        # angular: triples (centre, entry e1, entry e2) of neighbours inside the angular cutoff
        inside = dist <= self.angular_cutoff
        fc_angular = torch.where(inside, 0.5 * torch.cos(dist * (math.pi / self.angular_cutoff)) + 0.5,
                                 torch.zeros_like(dist))
        # neighbour entries (centre, other) inside the angular cutoff, still sorted by centre
        selected = inside.index_select(0, self.entry_pair).nonzero().squeeze(1)  # sorted by centre
        centre = self.entry_centre.index_select(0, selected)
        pair = self.entry_pair.index_select(0, selected)
        entry_sign = self.entry_sign.index_select(0, selected)
        other_slot = self.entry_other_slot.index_select(0, selected)
        num_entries = centre.shape[0]
        counts = torch.bincount(centre, minlength=n)
        end = torch.cumsum(counts, 0).index_select(0, centre)  # one past the centre's last entry
        max_count = int(counts.max()) if num_entries > 0 else 0
        entry = torch.arange(num_entries, device=x.device)
        offsets = torch.arange(1, max(max_count, 1), device=x.device)
        partner = entry.unsqueeze(1) + offsets.unsqueeze(0)  # (E, K-1)
        found = (partner < end.unsqueeze(1)).nonzero()
        e1 = found[:, 0]
        e2 = e1 + found[:, 1] + 1
        p1 = pair.index_select(0, e1)
        p2 = pair.index_select(0, e2)
        sign = entry_sign.index_select(0, e1) * entry_sign.index_select(0, e2)
        slot_pair = self.slot_pair_table.index_select(
            0, other_slot.index_select(0, e1) * self.num_slots + other_slot.index_select(0, e2))
        target = centre.index_select(0, e1) * self.num_slot_pairs + slot_pair
        r1 = dist.index_select(0, p1)
        r2 = dist.index_select(0, p2)
        dot = (diff.index_select(1, p1) * diff.index_select(1, p2)).sum(0) * sign
        cos95 = 0.95 * dot / torch.clamp(r1 * r2, min=1e-10)
        sin95 = torch.sqrt(1.0 - cos95 * cos95)
        angle = (0.5 + cos95 * self.half_cos_sections.view(-1, 1)
                 + sin95 * self.half_sin_sections.view(-1, 1)) ** self.angular_zeta  # (4, T)
        fc_pair = 2.0 * fc_angular.index_select(0, p1) * fc_angular.index_select(0, p2)
        mean_r = 0.5 * (r1 + r2)
        shell = torch.exp(-self.angular_eta.view(1, 1) * (mean_r - self.angular_shifts.view(-1, 1)) ** 2)
        shell = shell * fc_pair  # (8, T)
        terms = (shell.unsqueeze(1) * angle.unsqueeze(0)).reshape(32, -1)  # feature 4a + b
        angular = dist.new_zeros((32, n * self.num_slot_pairs)).index_add(1, target, terms)
        angular = angular.view(32, n, self.num_slot_pairs).permute(1, 2, 0).reshape(n, -1)
        return torch.cat([radial, angular], dim=1)
