""":class:`HybridForceField`: an OpenMM ``ForceField`` whose ``createSystem`` returns the ML/MM System."""
from __future__ import annotations

from typing import Iterable, Optional

from ..errors import HybridError
from ..mm.forcefield import MMForceField
from .embedding_generator import TAG, MLMMEmbeddingGenerator

__all__ = ["HybridForceField"]


class HybridForceField(MMForceField):
    """An ``openmm.app.ForceField`` whose ``createSystem`` returns the ML/MM System.

    Parameters
    ----------
    *files : str or file
        Force-field XML files, as for ``ForceField`` (``"amber14-all.xml"``,
        ``"amber14/tip3p.xml"``, ``"implicit/obc2.xml"``, ...).
    ligands : iterable, optional
        Small molecules (SDF/MOL2 paths, SMILES, RDKit molecules or
        :class:`~openmm_hybrid.mm.ligand.Ligand`); residues matching them get GAFF2/AM1-BCC
        (or OpenFF) templates from a :class:`~openmm_hybrid.mm.templates.LigandTemplateGenerator`
        (attribute :attr:`ligand_generator`), parametrised once per molecule and cached on disk.
    model : str, path, MLModel or None
        ML model: ``"ani2x"`` (default), a model file, or a loaded model.  ``None`` gives the
        MM System prepared for embedding (region unconstrained), as :class:`MMForceField` does.
    region : str or sequence of int, optional
        The ML region: an MDTraj selection or atom indices.  Default: the residues
        parametrised from ``ligands``.
    embedding : str
        Embedding method (``"mechanical"``; see :mod:`openmm_hybrid.embeddings`).
    precision : {"single", "double"}
    ml_force_group : int
        Force group of the ML force (default 1; MM forces stay in group 0).
    interpolate : bool
        Add ``lambda_interpolate`` (0 = MM, 1 = ML/MM).
    ligand_forcefield : str
        ``"gaff2"`` (AM1-BCC, default) or an OpenFF force field such as ``"openff-2.2.0"``
        (needs openff-toolkit).
    ligand_cache : bool
        Use the on-disk ligand parameter cache (default True).
    model_options : dict, optional
        e.g. ``{"model_index": 0}`` for one ANI-2x network.
    constrain_region : bool
        Only with ``model=None``: apply ``constraints`` inside the region as well (the
        default leaves it flexible, see :mod:`openmm_hybrid.mm.forcefield`).
    **embedding_options
        Passed to the embedding method.

    Notes
    -----
    ``createSystem(topology, **kwargs)`` takes ``ForceField.createSystem``'s arguments
    (nonbondedMethod, nonbondedCutoff, constraints, rigidWater, hydrogenMass, ...).
    Constraints never apply inside the ML region: with ``constraints=HBonds`` every X-H bond
    outside the region is constrained and the region's X-H bonds are flexible, described by
    the ML model (use 1 fs steps or ``hydrogenMass``).  ``Modeller`` (``addHydrogens``,
    ``addSolvent``) can be given this force field; it then sees the MM force field.
    """

    def __init__(self, *files, ligands: Iterable = (), model="ani2x", region=None,
                 embedding: str = "mechanical", precision: str = "single", ml_force_group: int = 1,
                 interpolate: bool = False, ligand_forcefield: str = "gaff2", ligand_cache: bool = True,
                 model_options: Optional[dict] = None, constrain_region: bool = False, **embedding_options):
        if model is not None and constrain_region:
            raise HybridError("constrain_region applies only to model=None: constraints never act inside an "
                              "embedded ML region")
        # read by _make_region_generator, which MMForceField.__init__ calls
        self._embedding_settings = None if model is None else dict(
            model=model, embedding=embedding, precision=precision, ml_force_group=ml_force_group,
            interpolate=interpolate, model_options=model_options, embedding_options=embedding_options)
        super().__init__(*files, ligands=ligands, ligand_forcefield=ligand_forcefield, ligand_cache=ligand_cache,
                         region=region, constrain_region=constrain_region)
        if model is not None and self.region_generator is None:
            raise HybridError("HybridForceField needs the ML region: give ligands=[...] (their residues become "
                              "the region) or region=\"<MDTraj selection>\" / atom indices")

    def _make_region_generator(self):
        if self._embedding_settings is None:
            return super()._make_region_generator()
        if any(isinstance(g, MLMMEmbeddingGenerator) for g in self.getGenerators()):
            raise HybridError(f"the force-field files already contain an <{TAG}> element; give the model, "
                              "region and embedding either there or to HybridForceField, not both")
        return MLMMEmbeddingGenerator(region=self.region,
                                      ligand_generator=self.ligand_generator if self.region is None else None,
                                      **self._embedding_settings)

    @property
    def embedding_generator(self):
        """The :class:`MLMMEmbeddingGenerator` (None with ``model=None``)."""
        generator = self.region_generator
        return generator if isinstance(generator, MLMMEmbeddingGenerator) else None

    @property
    def hybrid(self):
        """:class:`~openmm_hybrid.hybrid.HybridSystem` of the last ``createSystem`` (or None).

        ``hybrid.metadata()`` gives the ML atoms, model, embedding and force groups.
        """
        generator = self.embedding_generator
        return None if generator is None else generator.hybrid
