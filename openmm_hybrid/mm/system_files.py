"""System folders: an MM or ML/MM System with its topology, positions and description on disk.

A folder holds ``system.xml`` (OpenMM XML), ``topology.pdb``, ``state.xml`` and a JSON description
(``build.json`` from ``build``, plus ``embed.json`` from ``embed``).
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import openmm
import openmm.app as app
from openmm import unit

from ..errors import InputFileError
from ..forces.serialization import load_system, save_system

FILE_NAMES = {"system": "system.xml", "topology": "topology.pdb", "state": "state.xml"}


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
        """Write ``system.xml``, ``topology.pdb``, ``state.xml``, ``info_name`` and :attr:`reports` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_system(self.system, out / FILE_NAMES["system"])
        with open(out / FILE_NAMES["topology"], "w") as handle:
            app.PDBFile.writeFile(self.topology, self.positions, handle, keepIds=True)
        state = state or self.state
        if state is None:
            state = make_state(self.system, self.positions, self.topology.getPeriodicBoxVectors())
        (out / FILE_NAMES["state"]).write_text(openmm.XmlSerializer.serialize(state))
        (out / info_name).write_text(json.dumps(self.info, indent=2) + "\n")
        for name, content in self.reports.items():
            (out / name).write_text(json.dumps(content, indent=2) + "\n")
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
    system = load_system(paths["system"])
    pdb = app.PDBFile(str(paths["topology"]))
    state = openmm.XmlSerializer.deserialize(paths["state"].read_text())
    if system.getNumParticles() != pdb.topology.getNumAtoms():
        raise InputFileError(f"'{directory}': system.xml has {system.getNumParticles()} particles but "
                             f"topology.pdb has {pdb.topology.getNumAtoms()} atoms")
    info = {}
    for name in ("build.json", "embed.json"):
        if (directory / name).is_file():
            info.update(json.loads((directory / name).read_text()))
    if system.usesPeriodicBoundaryConditions():
        pdb.topology.setPeriodicBoxVectors(state.getPeriodicBoxVectors())
    return BuiltSystem(pdb.topology, system, state.getPositions(asNumpy=True), info, state)
