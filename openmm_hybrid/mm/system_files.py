"""System folders: an MM or ML/MM System with its topology, positions and description on disk.

A folder holds ``system.xml`` (OpenMM XML), ``topology.pdb``, ``state.xml`` and a JSON description
(``build.json`` from ``build``, plus ``embed.json`` from ``embed``).
"""
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import openmm
import openmm.app as app
from openmm import unit

from .._files import write_files_atomic
from ..errors import InputFileError, PluginError
from ..forces.serialization import load_system

FILE_NAMES = {"system": "system.xml", "topology": "topology.pdb", "state": "state.xml"}
INFO_NAMES = ("build.json", "embed.json")


@dataclass
class BuiltSystem:
    """An MM System with its topology, positions and a JSON-able description.

    Attributes
    ----------
    topology : openmm.app.Topology
    system : openmm.System
    positions : Quantity
        Positions in nm.
    info : dict
        Atom counts, ligand net charge, force fields, box; written as ``build.json``.
    state : openmm.State, optional
        Full state (positions, velocities, box, parameters) when read from disk.
    reports : dict
        Further JSON files to write beside ``info``: file name -> JSON-able content (``prep.json``).
    """

    topology: "app.Topology"
    system: openmm.System
    positions: unit.Quantity
    info: dict = field(default_factory=dict)
    state: Optional[openmm.State] = None
    reports: dict = field(default_factory=dict)

    def save(self, out_dir, info_name: str = "build.json", state=None) -> Path:
        """Write ``system.xml``, ``topology.pdb``, ``state.xml``, ``info_name`` and :attr:`reports`
        (``prep.json``, ...) into ``out_dir``.

        All files are serialised and written to temporary files first, then renamed into place
        (:func:`~openmm_hybrid._files.write_files_atomic`): a failure leaves the previous files
        as they were.  A description file of the other kind (``embed.json`` when writing
        ``build.json``) is removed, so the folder never describes another System.  Commands
        write through :func:`~openmm_hybrid._files.output_folder`, which makes the whole folder
        complete or absent.
        """
        out = Path(out_dir)
        state = state or self.state
        if state is None:
            state = make_state(self.system, self.positions, self.topology.getPeriodicBoxVectors())
        pdb = io.StringIO()
        app.PDBFile.writeFile(self.topology, self.positions, pdb, keepIds=True)
        files = {FILE_NAMES["system"]: openmm.XmlSerializer.serialize(self.system),
                 FILE_NAMES["topology"]: pdb.getvalue(),
                 FILE_NAMES["state"]: openmm.XmlSerializer.serialize(state),
                 info_name: json.dumps(self.info, indent=2) + "\n"}
        files.update({name: json.dumps(content, indent=2) + "\n" for name, content in self.reports.items()})
        write_files_atomic(out, files)
        for stale in INFO_NAMES:
            if stale != info_name:
                (out / stale).unlink(missing_ok=True)
        return out


def make_state(system, positions, box_vectors=None, velocities=None) -> openmm.State:
    """An OpenMM State holding positions (and box, velocities) for ``system``."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    if box_vectors is not None:
        context.setPeriodicBoxVectors(*box_vectors)
    context.setPositions(positions)
    if velocities is not None:
        context.setVelocities(velocities)
    state = context.getState(getPositions=True, getVelocities=True, getParameters=True)
    del context
    return state


def load_build(directory) -> BuiltSystem:
    """Read a directory written by :meth:`BuiltSystem.save` (``build`` or ``embed`` output)."""
    directory = Path(directory)
    paths = {key: directory / name for key, name in FILE_NAMES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InputFileError(f"'{directory}' is not an openmm-hybrid system directory: missing {', '.join(missing)}")
    system = _read(paths["system"], load_system)
    pdb = _read(paths["topology"], lambda path: app.PDBFile(str(path)))
    state = _read(paths["state"], lambda path: openmm.XmlSerializer.deserialize(path.read_text()))
    if system.getNumParticles() != pdb.topology.getNumAtoms():
        raise InputFileError(f"'{directory}': system.xml has {system.getNumParticles()} particles but "
                             f"topology.pdb has {pdb.topology.getNumAtoms()} atoms")
    info = {}
    for name in INFO_NAMES:
        if (directory / name).is_file():
            info.update(_read(directory / name, lambda path: json.loads(path.read_text())))
    if system.usesPeriodicBoundaryConditions():
        pdb.topology.setPeriodicBoxVectors(state.getPeriodicBoxVectors())
    return BuiltSystem(pdb.topology, system, state.getPositions(asNumpy=True), info, state)


def _read(path: Path, reader):
    """``reader(path)``, with a damaged file reported by name instead of a parser traceback."""
    try:
        return reader(path)
    except PluginError:
        raise
    except Exception as exc:
        raise InputFileError(f"cannot read '{path}' ({type(exc).__name__}: {str(exc)[:300]}): the file is damaged "
                             f"or truncated; write the folder again (build/embed with --overwrite)") from exc
