"""openmm-ml ``MLPotentialImpl`` backed by an openmm-hybrid model (see :mod:`.openmmml_plugin`)."""
from openmmml.mlpotential import MLPotentialImpl

from .openmmml_plugin import TORCHSCRIPT_POTENTIAL


class HybridPotentialImpl(MLPotentialImpl):
    """An openmm-ml potential backed by an openmm-hybrid :class:`~openmm_hybrid.models.MLModel`."""

    def __init__(self, name, model=None, precision="single", modelIndex=None, modelFile=None):
        from .models import load_model
        if model is None:
            if name == TORCHSCRIPT_POTENTIAL:
                if modelFile is None:
                    raise ValueError(f"{TORCHSCRIPT_POTENTIAL} needs modelFile=<path of a TorchScript model>")
                model = load_model(modelFile, precision=precision)
            else:
                options = {} if modelIndex is None else {"model_index": modelIndex}
                model = load_model("ani2x", precision=precision, **options)
        self.name = name
        self.model = load_model(model)

    def addForces(self, topology, system, atoms, forceGroup, totalCharge=0.0, scaleParameter=None, **args):
        from .ml_force import create_ml_force
        all_atoms = list(topology.atoms())
        atoms = list(range(len(all_atoms))) if atoms is None else list(atoms)
        atomic_numbers = [all_atoms[i].element.atomic_number for i in atoms]
        self.model.check_region(atomic_numbers, totalCharge)
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        system.addForce(create_ml_force(self.model, atoms, atomic_numbers, totalCharge, periodic, forceGroup,
                                        scale_parameter=scaleParameter))

    def getMLLongRange(self):
        # ANI-type models are short-ranged; a TorchScript model sees only the region in vacuo.
        return False
