"""Electrostatic embedding with EMLE: the ML region polarised by the MM charges near it.

The System is the mechanically embedded one (:mod:`.mechanical`: ML potential in vacuo,
region-environment Coulomb and Lennard-Jones in MM, PME included) plus the ``EMLEEmbedding``
coupling force of :mod:`.emle_coupling` (its module docstring gives the equations, switching and
periodic treatment).  With ``method="mm"`` the coupling vanishes identically and the System is the
mechanical one.

Options (snake case; ``embed.json`` records the effective values):

``emle_model``
    EMLE parameter file (``.mat`` from emle-models) or an :class:`~openmm_hybrid.models.EMLEModel`.
``emle_alpha_mode``
    ``"species"`` (default) or ``"reference"`` polarisabilities.
``emle_method``
    ``"electrostatic"`` (static + induced, default), ``"nonpol"`` (static only) or ``"mm"``.
``embedding_cutoff``, ``embedding_switch_distance``
    nm (or lengths); defaults 1.0 and cutoff - 0.2.
``emle_force_group``
    Force group of the coupling force (default: the ML force group).
``emle_precision``
    ``"double"`` (default, whatever the ML model's precision) or ``"single"``.
"""
from typing import List, Optional

import numpy as np
import openmm
import torch
from openmm import unit

from ..errors import HybridError
from ..models.base import ModelCapabilities
from ..models.emle import ALPHA_MODES, EMLE_ELEMENTS, EMLE_METHODS, EMLEModel, load_emle_parameters
from .base import refuse_unknown_options
from .emle_coupling import check_cutoff_fits_box, create_emle_force, environment_charges, minimum_image
from .interpolation import INTERPOLATION_PARAMETER
from .mechanical import MechanicalEmbedding

DEFAULT_CUTOFF_NM = 1.0
DEFAULT_SWITCH_WIDTH_NM = 0.2
# EMLE runs in float64 by default, whatever the ML model's precision: E_corr is a difference of
# sums over hundreds of charges, and float64 costs about 1 ms more per step for a small ligand on
# a CPU (emle_precision="single" is available).
DEFAULT_EMLE_PRECISION = "double"
OPTIONS = ("emle_model", "emle_alpha_mode", "emle_method", "embedding_cutoff", "embedding_switch_distance",
           "emle_force_group", "emle_precision")


def resolve_settings(emle_model=None, emle_alpha_mode: str = "species", emle_method: str = "electrostatic",
                     embedding_cutoff=DEFAULT_CUTOFF_NM, embedding_switch_distance=None,
                     emle_force_group: Optional[int] = None, emle_precision: str = DEFAULT_EMLE_PRECISION) -> dict:
    """Checked EMLE settings (cutoffs in nm), as recorded in ``embed.json``."""
    if emle_model is None:
        raise HybridError("electrostatic embedding needs an EMLE parameter file: emle_model=PATH "
                          "(CLI: --emle-model PATH), e.g. emle_qm7_aev.mat from emle-models")
    if isinstance(emle_model, EMLEModel):
        emle_alpha_mode, emle_method, emle_precision = emle_model.alpha_mode, emle_model.method, emle_model.precision
    if emle_precision not in ("single", "double"):
        raise HybridError(f"emle_precision must be 'single' or 'double', not {emle_precision!r}")
    if emle_alpha_mode not in ALPHA_MODES:
        raise HybridError(f"emle_alpha_mode must be one of {', '.join(ALPHA_MODES)}, not {emle_alpha_mode!r}")
    if emle_method not in EMLE_METHODS:
        raise HybridError(f"emle_method must be one of {', '.join(EMLE_METHODS)}, not {emle_method!r}")
    cutoff = _nm(embedding_cutoff, "embedding_cutoff")
    switch = cutoff - DEFAULT_SWITCH_WIDTH_NM if embedding_switch_distance is None else \
        _nm(embedding_switch_distance, "embedding_switch_distance")
    if not cutoff > 0:
        raise HybridError(f"embedding_cutoff must be positive, not {cutoff} nm")
    if not 0 <= switch < cutoff:
        raise HybridError(f"the switching distance ({switch} nm) must be at least 0 and below the embedding "
                          f"cutoff ({cutoff} nm)")
    if emle_force_group is not None and not 0 <= int(emle_force_group) <= 31:
        raise HybridError(f"emle_force_group must be between 0 and 31, not {emle_force_group}")
    return {"emle_model": emle_model.path if isinstance(emle_model, EMLEModel) else str(emle_model),
            "emle_alpha_mode": emle_alpha_mode, "emle_method": emle_method, "embedding_cutoff_nm": cutoff,
            "embedding_switch_distance_nm": switch,
            "emle_force_group": None if emle_force_group is None else int(emle_force_group),
            "emle_precision": emle_precision}


def _nm(value, name) -> float:
    if unit.is_quantity(value):
        return float(value.value_in_unit(unit.nanometer))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HybridError(f"{name} must be a length (nm), not {value!r}") from None


class ElectrostaticEmbedding(MechanicalEmbedding):
    """EMLE electrostatic embedding (see the module docstring for the options)."""

    name = "electrostatic"
    option_names = OPTIONS

    def settings(self, **options) -> dict:
        refuse_unknown_options(self, options)
        return resolve_settings(**options)

    def check_molecule(self, atomic_numbers, net_charge: float, what: str = "the ML region", **options) -> None:
        """Refuse elements EMLE has no parameters for (H C N O S); the EMLE file is read (and checked), not compiled.

        Charged regions are accepted: EMLE's charge equilibration takes the net charge.
        """
        settings = self.settings(**options)
        given = options.get("emle_model")
        label = given.path if isinstance(given, EMLEModel) else settings["emle_model"]
        if not isinstance(given, EMLEModel):
            load_emle_parameters(label)
        ModelCapabilities(EMLE_ELEMENTS, True).check(f"EMLE ({label})", atomic_numbers, net_charge, what=what)

    def check_positions(self, topology, system: openmm.System, atoms: List[int], positions, **options) -> None:
        """Refuse a periodic box too small for the embedding at ``positions``.

        The EMLE energy is continuous while the region's radius about its centroid, plus the
        cutoff, plus the extent of the widest charged MM residue (about its first atom) stays below
        half the smallest box width (see :mod:`.emle_coupling`).

        Raises
        ------
        HybridError
            Naming the widest residue, its extent and the box.
        """
        if not system.usesPeriodicBoundaryConditions():
            return
        cutoff = self.settings(**options)["embedding_cutoff_nm"]
        xyz = np.asarray(positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions) else positions,
                         dtype=np.float64)
        box = np.array([[v.value_in_unit(unit.nanometer) for v in vector]
                        for vector in system.getDefaultPeriodicBoxVectors()])
        half = 0.5 * min(box[0, 0], box[1, 1], box[2, 2])

        def min_image(d):
            return minimum_image(torch.from_numpy(d), torch.from_numpy(box)).numpy()

        ml = xyz[list(atoms)]
        ml = ml[0] + min_image(ml - ml[0])
        radius = float(np.linalg.norm(ml - ml.mean(0), axis=1).max())
        _, mm_atoms, _, groups = environment_charges(topology, system, atoms)
        widest, widest_extent = None, 0.0
        mm_xyz = xyz[mm_atoms]
        for row in groups:
            members = row[row < len(mm_atoms)]
            extent = float(np.linalg.norm(min_image(mm_xyz[members] - mm_xyz[members[0]]), axis=1).max())
            if extent > widest_extent:
                widest, widest_extent = mm_atoms[members[0]], extent
        if radius + cutoff + widest_extent >= half:
            residue = list(topology.atoms())[widest].residue
            raise HybridError(f"the periodic box is too small for electrostatic embedding: the embedding cutoff "
                              f"({cutoff} nm) plus the ML region's radius ({radius:.2f} nm) plus the extent of MM "
                              f"residue {residue.name} {residue.id} ({widest_extent:.2f} nm) reaches half the box "
                              f"({half:.2f} nm); use a larger box or a smaller embedding_cutoff")

    def create_system(self, topology, system: openmm.System, atoms: List[int], model, force_group: int,
                      interpolate: bool, total_charge: float = 0.0, **options) -> openmm.System:
        """The mechanical-embedding System of ``model`` plus the ``EMLEEmbedding`` coupling force."""
        settings = self.settings(**options)
        # everything that can be refused is checked before the (slower) mechanical system is built
        check_cutoff_fits_box(system, settings["embedding_cutoff_nm"])
        environment_charges(topology, system, atoms)
        emle = self._emle_model(settings, options.get("emle_model"))
        all_atoms = list(topology.atoms())
        emle.check_elements([all_atoms[i].element.atomic_number for i in atoms])
        hybrid = self.mechanical_system(topology, system, atoms, model, force_group, interpolate, total_charge)
        self._add_coupling(hybrid, topology, system, atoms, total_charge, force_group, interpolate, settings, emle)
        return hybrid

    def add_coupling_forces(self, hybrid: openmm.System, topology, mm_system: openmm.System, atoms: List[int],
                            total_charge: float, force_group: int, interpolate: bool, **options) -> None:
        settings = self.settings(**options)
        self._add_coupling(hybrid, topology, mm_system, atoms, total_charge, force_group, interpolate, settings,
                           self._emle_model(settings, options.get("emle_model")))

    @staticmethod
    def _emle_model(settings: dict, given) -> EMLEModel:
        if isinstance(given, EMLEModel):
            return given
        return EMLEModel(settings["emle_model"], alpha_mode=settings["emle_alpha_mode"],
                         method=settings["emle_method"], precision=settings["emle_precision"])

    @staticmethod
    def _add_coupling(hybrid, topology, mm_system, atoms, total_charge, force_group, interpolate, settings, emle):
        group = force_group if settings["emle_force_group"] is None else settings["emle_force_group"]
        hybrid.addForce(create_emle_force(emle, topology, mm_system, atoms, total_charge,
                                          cutoff=settings["embedding_cutoff_nm"],
                                          switch_distance=settings["embedding_switch_distance_nm"],
                                          force_group=group,
                                          scale_parameter=INTERPOLATION_PARAMETER if interpolate else None))
