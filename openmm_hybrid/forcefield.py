"""ML/MM through OpenMM's own ``ForceField``: :class:`HybridForceField` and ``<MLMMEmbedding>``.

Two ways to get an ML/MM System from an ordinary OpenMM script:

1. ``HybridForceField(*xml_files, ligands=[...], model="ani2x")`` instead of
   ``ForceField(*xml_files)``: its ``createSystem`` returns the ML/MM System.
2. A plain ``openmm.app.ForceField`` given a force-field file holding an element ::

       <MLMMEmbedding model="ani2x" residues="LIG" embedding="mechanical"/>

   (``forcefield_path("ani2x")``, or the name ``"openmm-hybrid/ani2x.xml"`` once
   openmm-hybrid is imported or installed).  Importing :mod:`openmm_hybrid` registers the
   parser for the tag in ``openmm.app.forcefield.parsers``; the shipped file also imports
   it itself (``<InitializationScript>``), so it works without the import.

Both go through :class:`MLMMEmbeddingGenerator`, and the build/embed pipeline of the
command line uses the same pieces (builder: ``HybridForceField(model=None)``; embed:
:func:`openmm_hybrid.hybrid.create_hybrid_system`, which the generator calls too), so the
three routes give the same System.

How the generator hooks into ``ForceField.createSystem`` (OpenMM 8.x):

* It is registered *first* among the force generators, so its ``createForce`` runs before
  the bonded generators read which bonds are constrained.  There it resolves the ML region
  and clears the constraint flag of every bond (and angle) inside the region: **constraints
  never act inside the ML region** (``constraints=HBonds`` constrains X-H bonds everywhere
  else, ``rigidWater`` keeps water outside the region rigid).  The region's MM bond terms
  are therefore created as for a flexible molecule and then removed by the embedding, where
  the ML model describes those bonds.  This is what the builder has always done for the
  ligand (README, *Constraints*): a constrained X-H bond has no MM bond term in OpenMM, so
  the MM end state of ``lambda_interpolate`` would otherwise lack it, and a constraint
  would freeze a degree of freedom the ML potential is meant to describe.
* The conversion to ML/MM runs in a ``Script`` the generator registers with the
  ForceField; OpenMM executes scripts at the very end of ``createSystem`` (after every
  generator's postprocessing and the template constraints), and the generator moves its
  script behind any other (``implicit/obc2.xml`` adds its GB force in a script).  The script
  calls :func:`~openmm_hybrid.hybrid.create_hybrid_system` on the finished MM System and
  replaces that System's forces and constraints by the ML/MM ones *in place*, because
  ``createSystem`` returns its own System object.
* When ``openmm.app.Modeller`` calls ``createSystem`` (``addHydrogens``, ``addSolvent`` and
  ``addExtraParticles`` use the force field for hydrogen positions, the total charge to
  neutralise, bond lengths) the generator does nothing: Modeller needs the MM System, and
  an embedding may move the region's charges out of the ``NonbondedForce``, which would
  make Modeller neutralise the wrong charge.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import openmm.app as app
import openmm.app.forcefield as _openmm_forcefield

from ._util import progress
from .errors import HybridError, ParameterizationError, RegionError

__all__ = ["HybridForceField", "MLMMEmbeddingGenerator", "forcefield_path", "data_directory",
           "FORCEFIELD_FILES", "TAG"]

#: The XML tag handled by :class:`MLMMEmbeddingGenerator`.
TAG = "MLMMEmbedding"

#: Force-field files shipped with openmm-hybrid, by short name; the value is the name OpenMM
#: resolves (relative to :func:`data_directory`).
FORCEFIELD_FILES = {"ani2x": "openmm-hybrid/ani2x.xml"}

# Attributes of <MLMMEmbedding> with a meaning of their own; any other attribute is passed
# to the embedding method as an option (e.g. an electrostatic embedding's model file).
_ELEMENT_ATTRIBUTES = ("model", "residues", "region", "embedding", "precision", "forceGroup",
                       "interpolate", "modelIndex")

_SCRIPT = ("import openmm_hybrid.forcefield as _openmm_hybrid_forcefield\n"
           "_openmm_hybrid_forcefield._embed_at_end_of_create_system(self, sys, data, topology)\n")


def data_directory() -> str:
    """Directory holding openmm-hybrid's force-field files (what the ``openmm.forcefielddir`` entry point,
    :mod:`openmm_hybrid_forcefield_dir`, gives OpenMM without importing this package)."""
    return str(Path(__file__).resolve().parent / "data")


def forcefield_path(name: str = "ani2x") -> str:
    """Absolute path of a force-field file shipped with openmm-hybrid.

    Parameters
    ----------
    name : str
        Short name, one of :data:`FORCEFIELD_FILES` (``"ani2x"``: ANI-2x, mechanical
        embedding, ML region = residues named ``LIG``).

    Returns
    -------
    str
        A path to pass to ``openmm.app.ForceField(...)``.
    """
    if name not in FORCEFIELD_FILES:
        raise HybridError(f"no force-field file {name!r} shipped with openmm-hybrid; "
                          f"available: {', '.join(sorted(FORCEFIELD_FILES))}")
    return os.path.join(data_directory(), FORCEFIELD_FILES[name])


# ----------------------------------------------------------------------------- helpers
def _called_from_modeller() -> bool:
    """Whether ``openmm.app.Modeller`` is on the call stack (see module docstring)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "openmm.app.modeller":
            return True
        frame = frame.f_back
    return False


def _attribute_value(text: str):
    """XML attribute text -> bool, int, float or the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _replace_system_contents(target, source) -> None:
    """Make ``target`` hold ``source``'s forces, constraints, masses and box (in place).

    Forces are deep-copied (a force can belong to one System only; OpenMM copies through its XML
    serialization, which the compiled plugin's force supports).
    """
    import copy

    if target.getNumParticles() != source.getNumParticles():
        raise HybridError(f"the embedding changed the number of particles ({target.getNumParticles()} -> "
                          f"{source.getNumParticles()}); the ForceField route cannot apply it in place")
    for i in range(source.getNumParticles()):
        target.setParticleMass(i, source.getParticleMass(i))
    for i in reversed(range(target.getNumConstraints())):
        target.removeConstraint(i)
    for i in range(source.getNumConstraints()):
        target.addConstraint(*source.getConstraintParameters(i))
    for i in reversed(range(target.getNumForces())):
        target.removeForce(i)
    for force in source.getForces():
        target.addForce(copy.deepcopy(force))
    target.setDefaultPeriodicBoxVectors(*source.getDefaultPeriodicBoxVectors())


# ----------------------------------------------------------------------------- generator
class MLMMEmbeddingGenerator:
    """Force-field generator that turns the System made by ``ForceField.createSystem`` into ML/MM.

    It is what an ``<MLMMEmbedding>`` element creates, and what :class:`HybridForceField`
    adds; see the module docstring for how it hooks into ``createSystem``.  Register it with
    :meth:`register`, not ``ForceField.registerGenerator``.

    Parameters
    ----------
    model : str, path, MLModel or None
        ``"ani2x"``, a TorchScript file or a loaded :class:`~openmm_hybrid.models.MLModel`.
        ``None``: no ML model; ``createSystem`` returns the MM System with the region left
        unconstrained, ready to be embedded later (what ``openmm-hybrid build`` writes).
    residues : iterable of str, optional
        ML region given as residue names.
    region : str or sequence of int, optional
        ML region as an MDTraj selection (``"resname LIG"``) or atom indices.
    ligand_generator : LigandTemplateGenerator, optional
        ML region = every residue whose template came from this generator (its ligands).
        Exactly one of ``residues``, ``region`` and ``ligand_generator`` is given.
    embedding : str
        Embedding method, a name registered in :mod:`openmm_hybrid.embeddings`.
    precision : {"single", "double"}
        Precision of the ML model.
    ml_force_group : int
        Force group of the ML force (0-31).
    interpolate : bool
        Add the ``lambda_interpolate`` global parameter (0 = MM, 1 = ML/MM).
    model_options : dict, optional
        Model options, e.g. ``{"model_index": 0}`` for one ANI-2x network.
    embedding_options : dict, optional
        Options passed to the embedding method.

    Attributes
    ----------
    hybrid : HybridSystem or None
        What the last ``createSystem`` made (ML atoms, force groups, ...); its ``system`` is
        the System ``createSystem`` returned.
    """

    def __init__(self, model="ani2x", residues: Optional[Iterable[str]] = None, region=None,
                 ligand_generator=None, embedding: str = "mechanical", precision: str = "single",
                 ml_force_group: int = 1, interpolate: bool = False, model_options: Optional[dict] = None,
                 embedding_options: Optional[dict] = None):
        from .embeddings import get_embedding
        from .models.base import check_precision

        given = [x is not None for x in (residues, region, ligand_generator)]
        if sum(given) != 1:
            raise HybridError("give the ML region one way: residue names, a selection/atom indices, or the "
                              "ligands of a template generator")
        if residues is not None:
            residues = [residues] if isinstance(residues, str) else list(residues)
            residues = [name for item in residues for name in str(item).replace(",", " ").split()]
            if not residues:
                raise RegionError("the ML region's residue list is empty")
        if model is not None:
            get_embedding(embedding)  # unknown name: error listing the available ones
            check_precision(precision)
        if not 0 <= int(ml_force_group) <= 31:
            raise HybridError(f"the ML force group must be between 0 and 31, not {ml_force_group}")
        self.model = model
        self.residues = residues
        self.region = region
        self.ligand_generator = ligand_generator
        self.embedding = embedding
        self.precision = precision
        self.ml_force_group = int(ml_force_group)
        self.interpolate = bool(interpolate)
        self.model_options = dict(model_options or {})
        self.embedding_options = dict(embedding_options or {})
        self.hybrid = None
        self.source_element = None
        self._model_instance = None
        self._forcefield = None

    # ------------------------------------------------------------- registration
    def register(self, forcefield) -> None:
        """Attach this generator to ``forcefield`` (first among its generators) with its script."""
        if any(isinstance(g, MLMMEmbeddingGenerator) for g in forcefield.getGenerators()):
            raise HybridError(f"the ForceField already has an ML/MM embedding (<{TAG}>); a ForceField "
                              "takes one (one ML region, which may hold several residues)")
        # First, so that createForce runs before the bonded generators read bond.isConstrained.
        forcefield.getGenerators().insert(0, self)
        forcefield.registerScript(_SCRIPT)
        self._forcefield = forcefield

    @staticmethod
    def parseElement(element, forcefield) -> None:
        """Parser for ``<MLMMEmbedding>`` (registered in ``openmm.app.forcefield.parsers``).

        Attributes: ``model`` (default ``ani2x``), ``residues`` (comma/space separated names)
        or ``region`` (MDTraj selection), ``embedding`` (default ``mechanical``), ``precision``
        (``single``/``double``), ``forceGroup`` (ML force group, default 1), ``interpolate``
        (``true``/``false``), ``modelIndex`` (one ANI-2x network).  Any other attribute is an
        option of the embedding method (values that read as numbers or true/false are
        converted).
        """
        attrib = dict(element.attrib)
        if "residues" not in attrib and "region" not in attrib:
            raise HybridError(f"<{TAG}> needs a 'residues' (residue names) or 'region' (MDTraj selection) "
                              "attribute naming the ML region")
        if "residues" in attrib and "region" in attrib:
            raise HybridError(f"<{TAG}>: give either 'residues' or 'region', not both")
        model_options = {}
        if "modelIndex" in attrib:
            model_options["model_index"] = int(attrib["modelIndex"])
        interpolate = _attribute_value(attrib.get("interpolate", "false"))
        if not isinstance(interpolate, bool):
            raise HybridError(f"<{TAG}> interpolate must be true or false, not {attrib['interpolate']!r}")
        generator = MLMMEmbeddingGenerator(
            model=attrib.get("model", "ani2x"), residues=attrib.get("residues"), region=attrib.get("region"),
            embedding=attrib.get("embedding", "mechanical"), precision=attrib.get("precision", "single"),
            ml_force_group=int(attrib.get("forceGroup", 1)), interpolate=interpolate,
            model_options=model_options,
            embedding_options={k: _attribute_value(v) for k, v in attrib.items() if k not in _ELEMENT_ATTRIBUTES})
        generator.source_element = element
        generator.register(forcefield)

    # ------------------------------------------------------------- region
    def _region_label(self) -> str:
        if self.residues is not None:
            return f"residues {', '.join(self.residues)}"
        if self.region is not None:
            return repr(self.region) if isinstance(self.region, str) else "given as atom indices"
        return "the ligands' residues"

    def region_atoms(self, data) -> List[int]:
        """Atom indices of the ML region in the topology being parametrised."""
        atoms_all = data.atoms
        if self.residues is not None:
            names = set(self.residues)
            atoms = [a.index for a in atoms_all if a.residue.name in names]
        elif self.ligand_generator is not None:
            owned = {a.residue for a in atoms_all
                     if self.ligand_generator.owns_atom_type(data.atomType.get(a, ""))}
            atoms = [a.index for a in atoms_all if a.residue in owned]
        else:
            from .region import select_region
            if not atoms_all:
                atoms = []
            else:
                return select_region(atoms_all[0].residue.chain.topology, self.region)
        if not atoms:
            present = sorted({a.residue.name for a in atoms_all})
            shown = ", ".join(present[:15]) + (", ..." if len(present) > 15 else "")
            raise RegionError(f"the ML region ({self._region_label()}) selects no atoms of the topology "
                              f"({len(atoms_all)} atoms; residue names: {shown or 'none'})")
        return atoms

    # ------------------------------------------------------------- OpenMM hooks
    def createForce(self, sys, data, nonbondedMethod, nonbondedCutoff, args) -> None:
        """Resolve the region and leave its bonds and angles unconstrained (adds no force)."""
        state = {"atoms": None}
        data.openmm_hybrid_embedding = state
        if _called_from_modeller():
            return
        atoms = self.region_atoms(data)
        state["atoms"] = atoms
        region = set(atoms)
        freed = 0
        for bond in data.bonds:
            if bond.isConstrained and bond.atom1 in region and bond.atom2 in region:
                bond.isConstrained = False
                freed += 1
        for i, angle in enumerate(data.angles):
            if data.isAngleConstrained[i] and all(a in region for a in angle):
                data.isAngleConstrained[i] = False
                freed += 1
        if freed:
            progress(f"ML region: {freed} bond/angle constraint(s) inside the region left out (the region "
                     f"stays flexible; use a 1 fs time step or hydrogen mass repartitioning)")
        # Run the embedding script after every other script (implicit/obc2.xml adds its GB force in one).
        scripts = getattr(self._forcefield, "_scripts", None)
        if scripts is not None and _SCRIPT in scripts and scripts[-1] != _SCRIPT:
            scripts.remove(_SCRIPT)
            scripts.append(_SCRIPT)

    def ml_model(self):
        """The ML model, loaded once per generator."""
        if self._model_instance is None:
            from .models import load_model
            self._model_instance = load_model(self.model, precision=self.precision, **self.model_options)
        return self._model_instance

    def embed(self, system, data, topology) -> None:
        """Turn the finished MM ``system`` into the ML/MM System, in place (the Script's work)."""
        state = getattr(data, "openmm_hybrid_embedding", None)
        if state is None or state["atoms"] is None or self.model is None:
            return
        from .hybrid import create_hybrid_system
        hybrid = create_hybrid_system(topology, system, state["atoms"], model=self.ml_model(),
                                      embedding=self.embedding, ml_force_group=self.ml_force_group,
                                      interpolate=self.interpolate, **self.embedding_options)
        _replace_system_contents(system, hybrid.system)
        hybrid.system = system
        if isinstance(self.region, str):
            hybrid.region_spec = self.region
        elif self.region is None:  # residue names, as an MDTraj selection (recorded in metadata())
            atoms = list(topology.atoms())
            names = sorted({atoms[i].residue.name for i in state["atoms"]})
            hybrid.region_spec = " or ".join(f"resname {name}" for name in names)
        self.hybrid = hybrid


def _embed_at_end_of_create_system(forcefield, system, data, topology) -> None:
    """Called by the Script registered with the ForceField (end of ``createSystem``)."""
    for generator in forcefield.getGenerators():
        if isinstance(generator, MLMMEmbeddingGenerator):
            generator.embed(system, data, topology)


def register_missed_elements(forcefield, trees) -> None:
    """Parse ``<MLMMEmbedding>`` elements OpenMM skipped because the parser was not registered yet.

    Called from the ``<InitializationScript>`` of the shipped files, so that they work in a
    script that did not ``import openmm_hybrid`` first (OpenMM ignores unknown tags).
    """
    parsed = {id(g.source_element) for g in forcefield.getGenerators()
              if isinstance(g, MLMMEmbeddingGenerator)}
    for tree in trees:
        for element in tree.getroot().findall(TAG):
            if id(element) not in parsed:
                MLMMEmbeddingGenerator.parseElement(element, forcefield)


# ----------------------------------------------------------------------------- ForceField subclass
class HybridForceField(app.ForceField):
    """An ``openmm.app.ForceField`` whose ``createSystem`` returns the ML/MM System.

    Parameters
    ----------
    *files : str or file
        Force-field XML files, as for ``ForceField`` (``"amber14-all.xml"``,
        ``"amber14/tip3p.xml"``, ``"implicit/obc2.xml"``, ...).
    ligands : iterable, optional
        Small molecules (SDF/MOL2 paths, SMILES, RDKit molecules or
        :class:`~openmm_hybrid.ligand.Ligand`); residues matching them get GAFF2/AM1-BCC
        (or OpenFF) templates from a :class:`~openmm_hybrid.template_generator.LigandTemplateGenerator`
        (attribute :attr:`ligand_generator`), parametrised once per molecule and cached on disk.
    model : str, path, MLModel or None
        ML model: ``"ani2x"`` (default), a TorchScript file, or a loaded model.  ``None``
        gives the MM System prepared for embedding (region unconstrained).
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
        default leaves it flexible, see *Constraints* in the README).
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
        from .template_generator import LigandTemplateGenerator

        super().__init__(*files)
        if isinstance(ligands, (str, os.PathLike)) or not hasattr(ligands, "__iter__"):
            ligands = [ligands]  # one molecule given on its own
        ligands = list(ligands)
        self.ligand_generator = None
        if ligands:
            self.ligand_generator = LigandTemplateGenerator(ligands, forcefield=ligand_forcefield,
                                                            cache=ligand_cache)
            self.registerTemplateGenerator(self.ligand_generator.generator)
        if any(isinstance(g, MLMMEmbeddingGenerator) for g in self.getGenerators()):
            raise HybridError(f"the force-field files already contain an <{TAG}> element; give the model, "
                              "region and embedding either there or to HybridForceField, not both")
        self.embedding_generator = None
        if model is None and constrain_region:
            return
        if region is None and self.ligand_generator is None:
            raise HybridError("HybridForceField needs the ML region: give ligands=[...] (their residues become "
                              "the region) or region=\"<MDTraj selection>\" / atom indices")
        self.embedding_generator = MLMMEmbeddingGenerator(
            model=model, region=region, ligand_generator=self.ligand_generator if region is None else None,
            embedding=embedding, precision=precision, ml_force_group=ml_force_group, interpolate=interpolate,
            model_options=model_options, embedding_options=embedding_options)
        self.embedding_generator.register(self)

    @property
    def hybrid(self):
        """:class:`~openmm_hybrid.hybrid.HybridSystem` of the last ``createSystem`` (or None).

        ``hybrid.metadata()`` gives the ML atoms, model, embedding and force groups.
        """
        return None if self.embedding_generator is None else self.embedding_generator.hybrid

    # OpenMM checks unused keyword arguments against the signature of ``self.createSystem``:
    # keep ForceField.createSystem's (functools.wraps sets __wrapped__, which inspect follows).
    @functools.wraps(app.ForceField.createSystem, assigned=("__module__", "__name__", "__qualname__"))
    def createSystem(self, topology, *args, **kwargs):
        """Create the ML/MM System; ``ForceField.createSystem``'s arguments (see the class Notes).

        Raises
        ------
        ParameterizationError
            A residue has no template and matches none of the ``ligands``.
        LigandError
            A residue matches a ligand's heavy atoms but not its hydrogens.
        RegionError, ModelError
            The ML region is empty or cannot be embedded (cuts a bond, unsupported element or charge).
        """
        try:
            return super().createSystem(topology, *args, **kwargs)
        except ValueError as exc:
            if str(exc).startswith("No template found") and not isinstance(exc, HybridError):
                known = ", ".join(f"{l.name} ({l.resname})" for l in self.ligand_generator.molecules) \
                    if self.ligand_generator is not None else "none"
                raise ParameterizationError(
                    f"a residue has no template: it is not in the force-field files and matches none of the "
                    f"ligands given to HybridForceField (ligands: {known}); add its molecule (SDF/MOL2 file, "
                    f"SMILES or RDKit molecule, with the hydrogens of the structure) to ligands=[...].\n"
                    f"OpenMM: {exc}") from exc
            raise


# ----------------------------------------------------------------------------- registration
_openmm_forcefield.parsers[TAG] = MLMMEmbeddingGenerator.parseElement

# Let OpenMM resolve "openmm-hybrid/ani2x.xml" also when the package is not installed with its
# openmm.forcefielddir entry point (source tree, editable install before reinstalling).
_directories = _openmm_forcefield._getDataDirectories()
if data_directory() not in _directories:
    _directories.append(data_directory())
