"""Atom selections on a Topology: MDTraj selection strings or atom indices."""
from typing import List, Sequence, Union

import mdtraj
import openmm.app

from ..errors import RegionError

RegionSpec = Union[str, Sequence[int]]


def select_region(topology: "openmm.app.Topology", region: RegionSpec) -> List[int]:
    """Resolve an ML region to atom indices.

    Parameters
    ----------
    topology : openmm.app.Topology
    region : str or sequence of int
        An MDTraj selection string (e.g. ``"resname LIG"``) or atom indices.
        Indices keep their order (the order the model sees); a selection is sorted.

    Returns
    -------
    list of int
    """
    n_atoms = topology.getNumAtoms()
    if isinstance(region, str):
        try:
            atoms = [int(i) for i in mdtraj.Topology.from_openmm(topology).select(region)]
        except Exception as exc:
            raise RegionError(f"cannot parse the ML region selection {region!r}: {exc}") from exc
        label = repr(region)
    else:
        atoms = [int(i) for i in region]
        label = "given as atom indices"
        bad = [i for i in atoms if not 0 <= i < n_atoms]
        if bad:
            raise RegionError(f"ML region atom indices {bad[:10]} are outside the topology (0..{n_atoms - 1})")
        if len(set(atoms)) != len(atoms):
            raise RegionError("ML region atom indices contain duplicates")
    if not atoms:
        raise RegionError(f"the ML region {label} is empty: it selects no atoms of the {n_atoms}-atom topology")
    return atoms
