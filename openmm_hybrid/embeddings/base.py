"""The embedding contract, and the registry of embedding methods.

An embedding method decides how the ML region meets its MM environment.  Each method is one
subclass of :class:`Embedding`, registered once under its name (:func:`register_embedding`, or the
``openmm_hybrid.embeddings`` entry point group whose value is the subclass).  The same classes
serve openmm-hybrid's own route (:func:`openmm_hybrid.hybrid.create_hybrid_system`) and openmm-ml's
(:mod:`openmm_hybrid.integrations.openmmml` wraps them as openmm-ml ``Embedding`` objects), so
there is one list of embeddings.
"""
from typing import Dict, List, Tuple

import openmm

from .._util import entry_point_targets
from ..errors import HybridError

ENTRY_POINT_GROUP = "openmm_hybrid.embeddings"


class Embedding:
    """Base class of embedding methods: the contract every method follows.

    Options are keyword arguments named in snake case (``embedding_cutoff``); every method
    refuses options it does not know, naming them.

    A method must

    * **make the System** (:meth:`create_system`): from the all-MM System (not modified) and a
      loaded :class:`~openmm_hybrid.models.MLModel`, return a new System in which the region's
      internal MM terms are replaced by the model's energy, in force group ``force_group``,
      through :func:`openmm_hybrid.forces.create_ml_force`; every further TorchScript term
      (couplings) is made by :func:`openmm_hybrid.forces.create_module_force`, so that it is
      recognised as an ML force (multiple-time-step splitting, energy reports);
    * **interpolate** when asked: with ``interpolate=True`` the System has the global
      parameter ``lambda_interpolate`` (default 1) and its energy is
      ``E_MM + lambda (E_ML/MM - E_MM)``, linear in lambda, with ``dE/dlambda`` available
      (module forces take it as their scale parameter, the region's MM terms come back
      multiplied by ``1 - lambda``, see :mod:`openmm_hybrid.embeddings.interpolation`);
    * **describe its settings** (:meth:`settings`): check the options before anything slow
      happens and return the effective settings as recorded in ``embed.json``;
    * **check positions** (:meth:`check_positions`, optional): refuse coordinates the method
      cannot handle (e.g. a box too small for a cutoff), with a message naming the problem;
    * **check a molecule** (:meth:`check_molecule`, optional): refuse elements or charges the
      method cannot take, before anything is built.

    Methods that are "the mechanical System plus coupling forces" implement
    :meth:`add_coupling_forces`; openmm-ml's route then adds those forces to openmm-ml's own
    mechanical embedding of any of its potentials.
    """

    #: Registry name of the method.
    name: str = ""
    #: The options it takes.
    option_names: Tuple[str, ...] = ()

    def settings(self, **options) -> dict:
        """Checked effective settings (JSON-serialisable); refuses unknown or invalid options."""
        refuse_unknown_options(self, options)
        return {}

    def check_positions(self, topology, system: openmm.System, atoms: List[int], positions, **options) -> None:
        """Refuse ``positions`` (nm) this method cannot handle; the default accepts any."""

    def check_molecule(self, atomic_numbers, net_charge: float, what: str = "the ML region", **options) -> None:
        """Refuse a region this method cannot take, from its elements and net charge alone.

        Cheap (no System, no model weights): ``build --model ... --embedding ...`` calls it on the
        ligand before parametrising it.  ``what`` names the atoms in the message.  The default
        accepts any.
        """

    def create_system(self, topology, system: openmm.System, atoms: List[int], model, force_group: int,
                      interpolate: bool, total_charge: float = 0.0, **options) -> openmm.System:
        """The ML/MM System (see the class docstring).

        Parameters
        ----------
        topology : openmm.app.Topology
        system : openmm.System
            The all-MM System; not modified.
        atoms : list of int
            The ML region (checked: whole molecules, integral charge, elements the model knows).
        model : MLModel
        force_group : int
            Force group of the ML force (and, by default, of coupling forces).
        interpolate : bool
            Add ``lambda_interpolate``.
        total_charge : float
            Net charge of the region, in e.
        options :
            The method's options (see :meth:`settings`).
        """
        raise NotImplementedError

    def add_coupling_forces(self, hybrid: openmm.System, topology, mm_system: openmm.System, atoms: List[int],
                            total_charge: float, force_group: int, interpolate: bool, **options) -> None:
        """Add the forces this method puts on top of mechanical embedding (default: none)."""


def refuse_unknown_options(embedding: Embedding, options: dict) -> None:
    """Refuse options ``embedding`` does not take, naming them and the ones it does."""
    unknown = sorted(set(options) - set(embedding.option_names))
    if unknown:
        accepted = ", ".join(embedding.option_names) if embedding.option_names else "none"
        owners = sorted(other.name for other in _EMBEDDINGS.values() if set(unknown) & set(other.option_names))
        hint = "".join(f"; embedding={name!r} takes {', '.join(sorted(set(unknown) & set(_EMBEDDINGS[name].option_names)))}"
                       for name in owners)
        raise HybridError(f"unknown {embedding.name}-embedding option(s): {', '.join(unknown)} (it takes: "
                          f"{accepted}){hint}")


_EMBEDDINGS: Dict[str, Embedding] = {}
_ENTRY_POINTS_LOADED = False


def register_embedding(embedding) -> Embedding:
    """Register an :class:`Embedding` (subclass or instance) under its :attr:`~Embedding.name`."""
    if isinstance(embedding, type):
        embedding = embedding()
    if not isinstance(embedding, Embedding) or not embedding.name:
        raise TypeError(f"{embedding!r} is not a named Embedding")
    _EMBEDDINGS[embedding.name] = embedding
    return embedding


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for _, cls in entry_point_targets(ENTRY_POINT_GROUP, _EMBEDDINGS):
        register_embedding(cls)


def available_embeddings() -> List[str]:
    """Names of the registered embedding methods."""
    _load_entry_points()
    return sorted(_EMBEDDINGS)


def get_embedding(name: str) -> Embedding:
    """The registered :class:`Embedding` called ``name``; an unknown name lists the known ones."""
    _load_entry_points()
    try:
        return _EMBEDDINGS[name]
    except KeyError:
        raise HybridError(f"unknown embedding {name!r}; available: {', '.join(available_embeddings())}") from None
