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
