"""openmm-hybrid's embedding methods as openmm-ml embeddings (``createMixedSystem(..., embedding=NAME)``).

One adapter, :class:`EmbeddingAdapter`, wraps any registered :class:`~openmm_hybrid.embeddings.Embedding`;
openmm-ml's camelCase options (``emleModel``, ``embeddingCutoff``) become the method's snake-case
options.  With an openmm-hybrid potential (``hybrid-*``) the method makes the System itself (which
also supports ``interpolate``); with openmm-ml's own potentials (their ML force is openmm-ml's) the
System is openmm-ml's mechanical embedding plus the method's coupling forces
(:meth:`~openmm_hybrid.embeddings.Embedding.add_coupling_forces`).
"""
import re

from openmmml.embeddings.mechanicalembedding import MechanicalEmbedding
from openmmml.mlpotential import Embedding as OpenMMMLEmbedding
from openmmml.mlpotential import EmbeddingFactory

from ...embeddings import get_embedding
from ...embeddings.mechanical import ModelPotentialImpl
from ...embeddings.region import check_region
from ...errors import HybridError


def snake_case(name: str) -> str:
    """openmm-ml's option names (``emleModel``) in openmm-hybrid's spelling (``emle_model``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class EmbeddingAdapter(OpenMMMLEmbedding):
    """An openmm-ml ``Embedding`` running an openmm-hybrid embedding method."""

    def __init__(self, embedding):
        self.embedding = embedding

    def createMixedSystem(self, potential, topology, system, atoms, forceGroup, interpolate, returnInfo=False,
                          **args):
        atoms = list(atoms)
        total_charge = args.pop("totalCharge", None)
        info = check_region(topology, system, atoms)  # whole molecules, integral charge (no link atoms)
        total_charge = float(info["net_charge"] if total_charge is None else total_charge)
        if isinstance(potential, ModelPotentialImpl):
            options = {snake_case(key): value for key, value in args.items()}
            new_system = self.embedding.create_system(topology, system, atoms, potential.model, forceGroup,
                                                      interpolate, total_charge=total_charge, **options)
            return dict(system=new_system, topology=topology, oldToNew=list(range(topology.getNumAtoms()))) \
                if returnInfo else new_system
        if interpolate:
            raise HybridError(f"embedding={self.embedding.name!r} with interpolate=True needs an openmm-hybrid "
                              f"potential (MLPotential('hybrid-<model>')); openmm-ml's own potentials "
                              f"interpolate through a CustomCVForce that cannot hold the coupling force")
        ours = {snake_case(key): args.pop(key) for key in list(args)
                if snake_case(key) in self.embedding.option_names}
        self.embedding.settings(**ours)  # refuse bad options before building anything
        result = MechanicalEmbedding().createMixedSystem(potential, topology, system, atoms, forceGroup, False,
                                                         returnInfo=returnInfo, totalCharge=total_charge, **args)
        new_system = result["system"] if isinstance(result, dict) else result
        self.embedding.add_coupling_forces(new_system, topology, system, atoms, total_charge, forceGroup, False,
                                           **ours)
        return result


class HybridEmbeddingFactory(EmbeddingFactory):
    """openmm-ml ``EmbeddingFactory`` for openmm-hybrid's embedding methods (by name)."""

    def createEmbedding(self, name: str, **args) -> EmbeddingAdapter:
        return EmbeddingAdapter(get_embedding(name))
