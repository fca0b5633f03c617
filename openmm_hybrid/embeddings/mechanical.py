"""Mechanical embedding, through openmm-ml's own implementation.

The ML model replaces the MM terms inside the region: openmm-ml's ``MechanicalEmbedding`` removes
the bonded terms among region atoms, excludes region-region nonbonded pairs (so that with PME
their reciprocal-space part is subtracted too, while the interactions of the region with its own
periodic images keep their MM charges), removes constraints inside the region, and keeps
region-environment Coulomb and Lennard-Jones in MM with the ligand's force-field parameters.
openmm-ml's embedding is handed a potential, :class:`ModelPotentialImpl`, whose force is
openmm-hybrid's TorchScript ML force (:func:`openmm_hybrid.forces.create_ml_force`), run inside
OpenMM by the compiled plugin.

With ``interpolate=True`` the global parameter ``lambda_interpolate`` (0 = MM, 1 = ML/MM) is
added by :mod:`openmm_hybrid.embeddings.interpolation` rather than by openmm-ml's
``CustomCVForce`` route (same energies; see that module for why: dE/dlambda, and GPU platforms).
"""
from typing import List

import openmm
from openmmml.embeddings.mechanicalembedding import MechanicalEmbedding as OpenMMMLMechanicalEmbedding
from openmmml.mlpotential import MLPotentialImpl

from ..forces import create_ml_force
from ..models import MLModel
from .base import Embedding, refuse_unknown_options
from .interpolation import INTERPOLATION_PARAMETER, add_scaled_region_mm_terms, check_no_region_constraints


class ModelPotentialImpl(MLPotentialImpl):
    """An openmm-ml potential implementation backed by an openmm-hybrid :class:`MLModel`.

    ``addForces`` adds the region's ML force (a ``TorchModuleForce``), optionally scaled by the
    global parameter named ``scaleParameter``.
    """

    def __init__(self, model: MLModel, name: str = ""):
        self.model = model
        self.name = name or model.name

    def addForces(self, topology, system, atoms, forceGroup, totalCharge=0.0, scaleParameter=None, **args):
        all_atoms = list(topology.atoms())
        atoms = list(range(len(all_atoms))) if atoms is None else list(atoms)
        atomic_numbers = [all_atoms[i].element.atomic_number for i in atoms]
        self.model.check_region(atomic_numbers, totalCharge)
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        system.addForce(create_ml_force(self.model, atoms, atomic_numbers, totalCharge, periodic, forceGroup,
                                        scale_parameter=scaleParameter))

    def getMLLongRange(self):
        # The model sees the region in vacuo (made whole, no periodic images): short-ranged.
        return False


class MechanicalEmbedding(Embedding):
    """Mechanical embedding (see the module docstring); no options."""

    name = "mechanical"

    def create_system(self, topology, system: openmm.System, atoms: List[int], model, force_group: int,
                      interpolate: bool, total_charge: float = 0.0, **options) -> openmm.System:
        refuse_unknown_options(self, options)
        return self.mechanical_system(topology, system, atoms, model, force_group, interpolate, total_charge)

    @staticmethod
    def mechanical_system(topology, system: openmm.System, atoms: List[int], model, force_group: int,
                          interpolate: bool, total_charge: float = 0.0) -> openmm.System:
        """The mechanically embedded System of ``model`` (what every embedding starts from)."""
        if interpolate:
            # checked on the MM system before openmm-ml removes the region's constraints
            check_no_region_constraints(system, atoms)
        hybrid = OpenMMMLMechanicalEmbedding().createMixedSystem(
            ModelPotentialImpl(model), topology, system, list(atoms), force_group, False, totalCharge=total_charge,
            scaleParameter=INTERPOLATION_PARAMETER if interpolate else None)
        # openmm-ml's MLPotential.createMixedSystem removes the region's constraints after the
        # embedding; called directly, the embedding leaves that to us.
        region = set(atoms)
        for index in reversed(range(hybrid.getNumConstraints())):
            i, j, _ = hybrid.getConstraintParameters(index)
            if i in region and j in region:
                hybrid.removeConstraint(index)
        if interpolate:
            add_scaled_region_mm_terms(hybrid, system, atoms, INTERPOLATION_PARAMETER,
                                       force_group=min(f.getForceGroup() for f in system.getForces()))
        return hybrid
