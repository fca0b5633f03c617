"""The EMLE coupling force: EMLE's energy of the region in the field of the MM charges, minus the MM Coulomb it replaces.

Electrostatic embedding (:mod:`.electrostatic`) is the mechanically embedded System plus one
TorchScript force, ``EMLEEmbedding``, made here, whose energy is a *correction on top of MM*:

    E_corr = E_EMLE(region; w_a Q_a within the cutoff)
             - sum_i sum_a q_i^MM w_a Q_a / r_ia

``Q_a`` are the MM charges of the environment, ``q_i^MM`` the region's own MM charges,
``w_a`` the switching weights below, ``r_ia`` minimum-image distances.  MM (PME or plain
Coulomb) keeps the complete region-environment Coulomb energy, long range included; inside
the cutoff the point-charge interaction of the region is replaced by EMLE's (static: core
charges plus Slater valence densities from QEq charges; induced: Thole-damped dipoles), and
nothing is counted twice: with ``method="mm"`` (EMLE's point charges = the region's MM
charges, no polarisation) E_corr vanishes identically and the System is the mechanical one.

Switching.  MM atoms are grouped by residue (a water is one group).  Every step the module
selects the groups with an atom within ``cutoff`` of any ML atom, and weights each group by

    w_g = 1 - prod_{i in ML} prod_{b in g} (1 - S(r_ib)),
    S(r) = 1 (r <= r_on),  1 - 10x^3 + 15x^4 - 6x^5 with x = (r - r_on)/(r_c - r_on),  0 (r >= r_c),

so a group counts fully (w = 1) when any of its atoms is within ``r_on`` of any ML atom and
not at all when none is within ``r_c``; w is twice continuously differentiable in all
coordinates (the energy is continuous and forces are consistent with it), and whole groups
(neutral waters) are switched together.  Defaults: ``r_c`` = 1.0 nm, ``r_on`` = ``r_c`` - 0.2 nm.

Periodic systems: the region is made whole about its first atom, and every MM atom is taken at
its minimum image about the region's centroid.  Each MM atom then meets the region through
exactly one image while ``r_c`` + (region radius about its centroid) < half the smallest box
width, which is checked when the force is made (``r_c`` alone) and at every evaluation (raises
otherwise).  The energy is continuous as long as no residue with an atom inside ``r_c`` reaches
further than half the box minus ``r_c`` minus the region radius from it (an atom of a switched
residue changes image only at half the box from the centroid); :meth:`ElectrostaticEmbedding.check_positions
<openmm_hybrid.embeddings.electrostatic.ElectrostaticEmbedding.check_positions>` checks that on given positions.  A residue stretched beyond it, as a water in a minimiser's
trial step (constraints relaxed) can be, still gets a defined energy rather than an error.

With ``interpolate=True`` the coupling force takes ``lambda_interpolate`` (its energy is
multiplied by it), so lambda = 0 is pure MM and lambda = 1 the electrostatically embedded
ML/MM system.
"""
from typing import List, Optional, Tuple

import numpy as np
import openmm
import torch
from openmm import unit

from ..errors import HybridError
from ..forces import EMLE_FORCE_NAME, create_module_force, plugin
from ..models.emle import HARTREE_TO_KJ_MOL, NM_TO_BOHR, EMLEModel

_FAR_AWAY_NM = 1.0e6  # position of the padding entries of the group table: S = 0 there


def minimum_image(d: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Displacements ``d`` (n, 3) reduced to their minimum image in OpenMM's reduced box (rows a, b, c)."""
    d = d - torch.outer(torch.round(d[:, 2] / box[2, 2]), box[2])
    d = d - torch.outer(torch.round(d[:, 1] / box[1, 1]), box[1])
    return d - torch.outer(torch.round(d[:, 0] / box[0, 0]), box[0])


class EMLEEmbeddingEnergy(torch.nn.Module):
    """TorchScript energy module of the EMLE coupling correction (kJ/mol, from nm positions).

    ``forward(positions, boxvectors=None, scale=None)`` follows the module-force contract of
    :func:`openmm_hybrid.ml_force.create_module_force`; ``energy_components`` returns
    ``[E_static, E_induced, E_Coulomb]`` (kJ/mol, unscaled) for reports.
    """

    periodic: bool
    scaled: bool
    cutoff: float
    switch_distance: float
    nm_to_bohr: float
    hartree_to_kj_mol: float
    force_name: str  # the force's name, also known to whoever holds only the module

    def __init__(self, emle: torch.jit.ScriptModule, ml_atoms: List[int], species: List[int],
                 ml_charges: List[float], net_charge: float, mm_atoms: List[int], mm_charges: List[float],
                 groups: np.ndarray, cutoff: float, switch_distance: float, periodic: bool, scaled: bool,
                 dtype: torch.dtype):
        super().__init__()
        self.emle = emle
        self.register_buffer("ml_atoms", torch.tensor(ml_atoms, dtype=torch.int64))
        self.register_buffer("species", torch.tensor(species, dtype=torch.int64))
        self.register_buffer("ml_charges", torch.tensor(ml_charges, dtype=dtype))
        self.register_buffer("net_charge", torch.tensor(float(net_charge), dtype=dtype))
        self.register_buffer("mm_atoms", torch.tensor(mm_atoms, dtype=torch.int64))
        self.register_buffer("mm_charges", torch.tensor(mm_charges, dtype=dtype))
        self.register_buffer("groups", torch.tensor(groups, dtype=torch.int64).reshape(-1, groups.shape[1]))
        self.register_buffer("far_away", torch.full((1, 3), _FAR_AWAY_NM, dtype=dtype))
        self.cutoff = float(cutoff)
        self.switch_distance = float(switch_distance)
        self.periodic = periodic
        self.scaled = scaled
        self.nm_to_bohr = NM_TO_BOHR
        self.hartree_to_kj_mol = HARTREE_TO_KJ_MOL
        self.force_name = EMLE_FORCE_NAME

    def _switch(self, r: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((r - self.switch_distance) / (self.cutoff - self.switch_distance), 0.0, 1.0)
        return 1.0 - x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)

    def _embedding(self, positions: torch.Tensor,
                   boxvectors: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Region positions about its centroid, positions of the MM charges EMLE sees (same origin)
        and their switched charges; nm, e."""
        dtype = self.ml_charges.dtype
        device = positions.device
        pos = positions.to(dtype)
        ml = pos.index_select(0, self.ml_atoms)
        periodic = self.periodic and boxvectors is not None
        box = torch.zeros(3, 3, dtype=dtype, device=device)
        if periodic and boxvectors is not None:
            box = boxvectors.to(dtype)
            ml = ml[0] + minimum_image(ml - ml[0], box)
        center = ml.mean(0)
        ml = ml - center
        # Geometry and selection without gradients, over all MM charges: every MM atom at its own
        # minimum image about the region's centroid, as a lattice shift per atom.
        mm = pos.detach().index_select(0, self.mm_atoms) - center.detach()
        shift = torch.zeros_like(mm)
        if periodic:
            shift = minimum_image(mm, box) - mm
            mm = mm + shift
        n_mm = mm.shape[0]
        # residue distance to the region: the smallest over its atoms and the ML atoms.  Residues
        # within r_on have w = 1 exactly (a factor 1 - S is 0), those beyond r_c are left out (w = 0),
        # and only those in between need the switching product.
        nearest = torch.cdist(mm, ml.detach(), compute_mode="donot_use_mm_for_euclid_dist").min(1).values
        nearest = torch.cat([nearest, torch.full((1,), 2.0 * self.cutoff + 1.0, dtype=dtype, device=device)])
        group_nearest = nearest[self.groups].min(1).values  # padding entries index n_mm
        full = self.groups[group_nearest <= self.switch_distance].reshape(-1)
        full = full[full < n_mm]
        zone = self.groups[(group_nearest > self.switch_distance) & (group_nearest < self.cutoff)]
        entries = zone.reshape(-1)
        valid = entries < n_mm
        atoms = torch.cat([full, entries[valid]])
        if periodic and atoms.shape[0] > 0:
            radius = float(torch.sqrt((ml.detach() * ml.detach()).sum(1)).max())
            half_width = 0.5 * float(torch.min(torch.stack([box[0, 0], box[1, 1], box[2, 2]])))
            if radius + self.cutoff >= half_width:
                raise RuntimeError("EMLE embedding: the embedding cutoff ({} nm) plus the ML region's radius ({} nm) "
                                   "reaches half the periodic box ({} nm): minimum images would be ambiguous; use "
                                   "a larger box or a smaller cutoff".format(self.cutoff, radius, half_width))
        # positions of the selected charges, differentiable (the lattice shifts are constants)
        selected = pos.index_select(0, self.mm_atoms.index_select(0, atoms)) - center + shift.index_select(0, atoms)
        # switching weights of the residues in the switching zone
        rows = torch.full(entries.shape, atoms.shape[0], dtype=torch.int64, device=device)
        rows[valid] = torch.arange(full.shape[0], atoms.shape[0], dtype=torch.int64, device=device)
        padded = torch.cat([selected, self.far_away]).index_select(0, rows)  # (k G, 3)
        r = torch.cdist(padded, ml, compute_mode="donot_use_mm_for_euclid_dist")  # (k G, n), all >= r_on
        outside = (1.0 - self._switch(r)).prod(1).view(zone.shape[0], zone.shape[1]).prod(1)
        zone_weights = (1.0 - outside).unsqueeze(1).expand(zone.shape[0], zone.shape[1]).reshape(-1)[valid]
        weights = torch.cat([torch.ones(full.shape[0], dtype=dtype, device=device), zone_weights])
        charges = self.mm_charges.index_select(0, atoms) * weights
        return ml, selected, charges

    def _scale(self, boxvectors: Optional[torch.Tensor],
               scale: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        if self.scaled and not self.periodic and scale is None:
            return None, boxvectors  # non-periodic: the parameter arrives in the box slot
        return boxvectors, scale

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        boxvectors, scale = self._scale(boxvectors, scale)
        ml, mm, charges = self._embedding(positions, boxvectors)
        if mm.shape[0] == 0:
            energy = (ml * 0.0).sum().to(torch.float64)  # nothing within the cutoff (kept differentiable)
        else:
            energy = self.emle.energy_terms(self.species, ml, mm, charges, self.net_charge, self.ml_charges,
                                            self.ml_charges).sum().to(torch.float64)
        if scale is not None:
            energy = energy * scale.to(torch.float64).reshape(())
        return energy

    @torch.jit.export
    def energy_components(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[E_static, E_induced, E_Coulomb] in kJ/mol (float64, unscaled); forward = sum - 2 * last."""
        ml, mm, charges = self._embedding(positions, boxvectors)
        if mm.shape[0] == 0:
            return torch.zeros(3, dtype=torch.float64, device=positions.device)
        terms = self.emle.energy_terms(self.species, ml, mm, charges, self.net_charge, self.ml_charges,
                                       torch.zeros_like(self.ml_charges))
        r = torch.sqrt(((mm.unsqueeze(1) - ml.unsqueeze(0)) ** 2).sum(-1)) * self.nm_to_bohr
        coulomb = (charges.unsqueeze(1) * self.ml_charges.unsqueeze(0) / r).sum() * self.hartree_to_kj_mol
        return torch.cat([terms, coulomb.reshape(1)]).to(torch.float64)

    @torch.jit.export
    def embedded_charges(self, positions: torch.Tensor,
                         boxvectors: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Positions (nm, about the region's centroid) and switched charges (e) of the MM atoms EMLE sees."""
        ml, mm, charges = self._embedding(positions, boxvectors)
        return mm, charges


def _nonbonded_force(system: openmm.System) -> openmm.NonbondedForce:
    forces = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if len(forces) != 1:
        raise HybridError(f"electrostatic embedding needs exactly one NonbondedForce holding the MM charges; the "
                          f"System has {len(forces)}")
    return forces[0]


def environment_charges(topology, system: openmm.System, atoms):
    """MM charges the region sees, grouped for switching.

    Returns
    -------
    region_charges : list of float
        MM charges of ``atoms`` (e), in region order.
    mm_atoms : list of int
        Charged particles outside the region.
    mm_charges : list of float
        Their charges (e).
    groups : numpy.ndarray
        (n_groups, max group size) indices into ``mm_atoms``, one row per residue, padded
        with ``len(mm_atoms)``.
    """
    force = _nonbonded_force(system)
    if force.getNumParticleParameterOffsets() or force.getNumExceptionParameterOffsets():
        raise HybridError("electrostatic embedding does not support NonbondedForce parameter offsets (charges "
                          "that change with global parameters)")
    region = set(int(a) for a in atoms)
    for k in range(force.getNumExceptions()):
        i, j = force.getExceptionParameters(k)[:2]
        if (i in region) != (j in region):
            raise HybridError(f"the MM system has a nonbonded exception between ML atom {i if i in region else j} "
                              f"and MM atom {j if i in region else i}; electrostatic embedding assumes the MM "
                              f"Coulomb interaction of every region-environment pair is complete")
    e = unit.elementary_charge
    charges = [force.getParticleParameters(i)[0].value_in_unit(e) for i in range(system.getNumParticles())]
    region_charges = [charges[a] for a in atoms]
    residue_of = {}
    for residue in topology.residues():
        for atom in residue.atoms():
            residue_of[atom.index] = residue.index
    mm_atoms = [i for i in range(system.getNumParticles()) if i not in region and charges[i] != 0.0]
    by_residue = {}
    for k, i in enumerate(mm_atoms):
        by_residue.setdefault(residue_of.get(i, -1 - i), []).append(k)  # particles outside the topology: alone
    rows = list(by_residue.values())
    width = max((len(r) for r in rows), default=1)
    groups = np.full((len(rows), width), len(mm_atoms), dtype=np.int64)
    for g, row in enumerate(rows):
        groups[g, :len(row)] = row
    return region_charges, mm_atoms, [charges[i] for i in mm_atoms], groups


def check_cutoff_fits_box(system: openmm.System, cutoff: float) -> None:
    """Refuse an embedding cutoff (nm) of half the periodic box or more (minimum images would be ambiguous)."""
    if not system.usesPeriodicBoundaryConditions():
        return
    a, b, c = system.getDefaultPeriodicBoxVectors()
    half = 0.5 * min(a[0], b[1], c[2]).value_in_unit(unit.nanometer)
    if cutoff >= half:
        raise HybridError(f"the embedding cutoff ({cutoff} nm) must be less than half the periodic box "
                          f"({half:.3f} nm); use a smaller embedding_cutoff or a larger box")


def create_emle_force(emle: EMLEModel, topology, mm_system: openmm.System, atoms, net_charge: float,
                      cutoff: float, switch_distance: float, force_group: int = 0,
                      scale_parameter: Optional[str] = None):
    """The ``EMLEEmbedding`` force: EMLE coupling minus the MM Coulomb it replaces.

    Parameters
    ----------
    emle : EMLEModel
        The loaded EMLE model (its precision, alpha mode and method are used).
    topology : openmm.app.Topology
    mm_system : openmm.System
        The all-MM System (its NonbondedForce gives the charges).
    atoms : sequence of int
        The ML region.
    net_charge : float
        Net charge of the region (e), the QEq constraint.
    cutoff, switch_distance : float
        Embedding cutoff and start of the switching, in nm (checked settings).
    force_group : int
    scale_parameter : str, optional
        Global parameter multiplying the energy (``lambda_interpolate``).

    Returns
    -------
    openmm.Force
        Made by :func:`openmm_hybrid.forces.create_module_force` under the name ``EMLEEmbedding``.
    """
    all_atoms = list(topology.atoms())
    atomic_numbers = [all_atoms[i].element.atomic_number if all_atoms[i].element is not None else 0 for i in atoms]
    emle.check_elements(atomic_numbers)
    periodic = mm_system.usesPeriodicBoundaryConditions()
    check_cutoff_fits_box(mm_system, cutoff)
    region_charges, mm_atoms, mm_charges, groups = environment_charges(topology, mm_system, atoms)
    species = [emle.supported_elements.index(z) for z in atomic_numbers]
    module = EMLEEmbeddingEnergy(emle.module, list(atoms), species, region_charges, net_charge, mm_atoms,
                                 mm_charges, groups, cutoff, switch_distance, periodic, scale_parameter is not None,
                                 emle.dtype)
    return create_module_force(torch.jit.script(module), periodic=periodic, force_group=force_group,
                               name=EMLE_FORCE_NAME, scale_parameter=scale_parameter)


def emle_energy_components(force, positions, box_vectors=None) -> Optional[dict]:
    """``{"emle_static", "emle_induced", "emle_mm_coulomb"}`` (kJ/mol) of an ``EMLEEmbedding`` force.

    The force's energy is ``emle_static + emle_induced - emle_mm_coulomb`` (times
    ``lambda_interpolate`` if it has that parameter).  Returns None when the force does not
    expose its TorchScript module.
    """
    if not plugin.is_torch_module_force(force):
        return None
    module = plugin.as_torch_module_force(force).getModule()
    if not hasattr(module, "energy_components"):
        return None
    xyz = positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions) else positions
    pos = torch.tensor(np.asarray(xyz, dtype=np.float64))
    box = None
    if force.usesPeriodicBoundaryConditions() and box_vectors is not None:
        box = torch.tensor(_box_array(box_vectors))
    static, induced, coulomb = module.energy_components(pos, box).tolist()
    return {"emle_static": static, "emle_induced": induced, "emle_mm_coulomb": coulomb}


def _box_array(box_vectors) -> np.ndarray:
    """(3, 3) box in nm from a Quantity or a sequence of Quantity/plain vectors."""
    if unit.is_quantity(box_vectors):
        box_vectors = box_vectors.value_in_unit(unit.nanometer)
    rows = [v.value_in_unit(unit.nanometer) if unit.is_quantity(v) else v for v in box_vectors]
    return np.array([[float(x) for x in row] for row in rows], dtype=np.float64)
