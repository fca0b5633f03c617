"""openmm-ml extension point: openmm-hybrid's TorchScript models as MLPotentials.

Registered under the ``openmmml.potentials`` entry point group as

``hybrid-ani2x``
    ANI-2x in TorchScript (options: ``precision="single"|"double"``, ``modelIndex``).
``hybrid-torchscript``
    a user TorchScript file (option: ``modelFile``, ``precision``).

so that ``openmmml.MLPotential("hybrid-ani2x").createMixedSystem(...)`` uses openmm-ml's
own embedding machinery (bonded-term removal, exclusions, ``lambda_interpolate``)
with a force that runs inside OpenMM.  An already loaded model can be passed as
``MLPotential("hybrid-ani2x", model=MLModel)``.

The ``openmmml.embeddings`` entry point ``electrostatic`` adds EMLE electrostatic embedding
for any openmm-ml potential: ``createMixedSystem(..., embedding="electrostatic",
emleModel=PATH)``.  Without installed entry points, :func:`register_with_openmmml` does the
same registrations.

openmm-ml imports this module from its entry-point loop while ``openmmml`` is still
being initialised, so nothing from openmm-ml is imported here at module level; the
factory is duck-typed (openmm-ml only calls ``createImpl``) and the implementation
lives in :mod:`openmm_hybrid.openmmml_potential`.
"""


ANI2X_POTENTIAL = "hybrid-ani2x"
TORCHSCRIPT_POTENTIAL = "hybrid-torchscript"


class HybridPotentialImplFactory:
    """Creates :class:`~openmm_hybrid.openmmml_potential.HybridPotentialImpl` objects for openmm-ml."""

    def createImpl(self, name: str, **args):
        from .openmmml_potential import HybridPotentialImpl
        return HybridPotentialImpl(name, **args)


ELECTROSTATIC_EMBEDDING = "electrostatic"


class ElectrostaticEmbeddingFactory:
    """openmm-ml ``EmbeddingFactory`` for ``embedding="electrostatic"`` (EMLE), registered under
    the ``openmmml.embeddings`` entry point group; see
    :class:`openmm_hybrid.embeddings.electrostatic.ElectrostaticEmbedding`."""

    def createEmbedding(self, name: str, **args):
        from .embeddings.electrostatic import ElectrostaticEmbedding
        return ElectrostaticEmbedding()


def register_with_openmmml() -> None:
    """Register openmm-hybrid's potentials and embeddings with openmm-ml (idempotent).

    Installed packages do this through entry points; this makes a source tree (or an
    environment installed before the entry points existed) work the same way.
    """
    from openmmml import MLPotential
    for name in (ANI2X_POTENTIAL, TORCHSCRIPT_POTENTIAL):
        if name not in MLPotential._implFactories:
            MLPotential.registerImplFactory(name, HybridPotentialImplFactory())
    if ELECTROSTATIC_EMBEDDING not in MLPotential._embeddingFactories:
        MLPotential.registerEmbeddingFactory(ELECTROSTATIC_EMBEDDING, ElectrostaticEmbeddingFactory())
