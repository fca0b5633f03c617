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
command line uses the same pieces (builder: :class:`openmm_hybrid.mm.forcefield.MMForceField`, whose region generator
this one extends; embed: :func:`openmm_hybrid.hybrid.create_hybrid_system`, which the
generator calls too), so the
three routes give the same System.

How the generator hooks into ``ForceField.createSystem`` (OpenMM 8.x):

* It is registered *first* among the force generators, so its ``createForce`` runs before
  the bonded generators read which bonds are constrained.  There it resolves the ML region
  and clears the constraint flag of every bond (and angle) inside the region: **constraints
  never act inside the ML region** (``constraints=HBonds`` constrains X-H bonds everywhere
  else, ``rigidWater`` keeps water outside the region rigid).  The region's MM bond terms
  are therefore created as for a flexible molecule and then removed by the embedding, where
  the ML model describes those bonds.  See :mod:`openmm_hybrid.mm.forcefield` for why: a constrained X-H bond has no MM bond term in OpenMM, so
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

import copy
import os
from pathlib import Path
from typing import Iterable, Optional

import openmm.app.forcefield as _openmm_forcefield

from ..embeddings import get_embedding
from ..errors import HybridError
from ..hybrid import create_hybrid_system
from ..mm.forcefield import FlexibleRegionGenerator
from ..models import load_model
from ..models.base import check_precision

__all__ = ["MLMMEmbeddingGenerator", "forcefield_path", "data_directory", "register_missed_elements",
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
           "_openmm_hybrid_forcefield.embed_at_end_of_create_system(self, sys, data, topology)\n")


def data_directory() -> str:
    """Directory holding openmm-hybrid's force-field files (what the ``openmm.forcefielddir`` entry point,
    :mod:`openmm_hybrid_forcefield_dir`, gives OpenMM without importing this package)."""
    return str(Path(__file__).resolve().parent.parent / "data")


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


class MLMMEmbeddingGenerator(FlexibleRegionGenerator):
    """Force-field generator that turns the System made by ``ForceField.createSystem`` into ML/MM.

    It is what an ``<MLMMEmbedding>`` element creates, and what :class:`HybridForceField`
    adds; see the module docstring for how it hooks into ``createSystem``.  Register it with
    :meth:`register`, not ``ForceField.registerGenerator``.

    Parameters
    ----------
    model : str, path or MLModel
        ``"ani2x"``, a model file or a loaded :class:`~openmm_hybrid.models.MLModel`.
    residues, region, ligand_generator :
        The ML region, one way (see :class:`~openmm_hybrid.mm.forcefield.FlexibleRegionGenerator`).
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
        super().__init__(residues=residues, region=region, ligand_generator=ligand_generator)
        if model is None:
            raise HybridError("MLMMEmbeddingGenerator needs a model; for the MM System alone use "
                              "openmm_hybrid.mm.MMForceField")
        get_embedding(embedding)  # unknown name: error listing the available ones
        check_precision(precision)
        if not 0 <= int(ml_force_group) <= 31:
            raise HybridError(f"the ML force group must be between 0 and 31, not {ml_force_group}")
        self.model = model
        self.embedding = embedding
        self.precision = precision
        self.ml_force_group = int(ml_force_group)
        self.interpolate = bool(interpolate)
        self.model_options = dict(model_options or {})
        self.embedding_options = dict(embedding_options or {})
        self.hybrid = None
        self.source_element = None
        self._model_instance = None

    def register(self, forcefield) -> None:
        """Attach this generator to ``forcefield`` (first among its generators) with its script."""
        if any(isinstance(g, FlexibleRegionGenerator) for g in forcefield.getGenerators()):
            raise HybridError(f"the ForceField already has an ML/MM embedding (<{TAG}>); a ForceField "
                              "takes one (one ML region, which may hold several residues)")
        super().register(forcefield)
        forcefield.registerScript(_SCRIPT)

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

    def createForce(self, sys, data, nonbondedMethod, nonbondedCutoff, args) -> None:
        """Resolve the region and free its constraints (see the base class); keep the script last."""
        super().createForce(sys, data, nonbondedMethod, nonbondedCutoff, args)
        # Run the embedding script after every other script (implicit/obc2.xml adds its GB force in one).
        scripts = getattr(self._forcefield, "_scripts", None)
        if scripts is not None and _SCRIPT in scripts and scripts[-1] != _SCRIPT:
            scripts.remove(_SCRIPT)
            scripts.append(_SCRIPT)

    def ml_model(self):
        """The ML model, loaded once per generator."""
        if self._model_instance is None:
            self._model_instance = load_model(self.model, precision=self.precision, **self.model_options)
        return self._model_instance

    def embed(self, system, data, topology) -> None:
        """Turn the finished MM ``system`` into the ML/MM System, in place (the Script's work)."""
        atoms = getattr(data, "openmm_hybrid_region", None)
        if atoms is None:
            return
        hybrid = create_hybrid_system(topology, system, atoms, model=self.ml_model(),
                                      embedding=self.embedding, ml_force_group=self.ml_force_group,
                                      interpolate=self.interpolate, **self.embedding_options)
        _replace_system_contents(system, hybrid.system)
        hybrid.system = system
        if isinstance(self.region, str):
            hybrid.region_spec = self.region
        elif self.region is None:  # residue names, as an MDTraj selection (recorded in metadata())
            all_atoms = list(topology.atoms())
            names = sorted({all_atoms[i].residue.name for i in atoms})
            hybrid.region_spec = " or ".join(f"resname {name}" for name in names)
        self.hybrid = hybrid


def embed_at_end_of_create_system(forcefield, system, data, topology) -> None:
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


# ----------------------------------------------------------------------------- registration
_openmm_forcefield.parsers[TAG] = MLMMEmbeddingGenerator.parseElement

# Let OpenMM resolve "openmm-hybrid/ani2x.xml" also when the package is not installed with its
# openmm.forcefielddir entry point (source tree, editable install before reinstalling).
_directories = _openmm_forcefield._getDataDirectories()
if data_directory() not in _directories:
    _directories.append(data_directory())
