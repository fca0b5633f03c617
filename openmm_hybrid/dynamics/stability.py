"""Blow-up detection beyond NaN: bonds stretched far beyond their length, molecules coming
apart, temperature excursions.

A simulation can fly apart without any NaN: with too large a time step, or from a broken
starting structure, atoms of a small molecule in vacuum separate by hundreds of angstrom and
the energy becomes constant (nothing interacts any more).  :class:`BlowUpDetector` looks at a
state and stops the run with a :class:`~openmm_hybrid.errors.SimulationError` that names the
step and the atoms when

- a bonded pair (the topology's bonds, so also the ML region's, whose MM bond terms the
  embedding removed) is longer than :data:`BOND_STRETCH_FACTOR` times its reference length:
  the force field's equilibrium length where a ``HarmonicBondForce`` has the pair, the
  constraint distance for constrained pairs, else (and at least) its length in the starting
  structure.  Thermal fluctuations at room temperature change bond lengths by a few percent;
  doubling one breaks it.  Since every bond of a molecule is checked, this is also what shows
  a molecule whose atoms drift apart (the message names the molecule);
- the instantaneous temperature exceeds both :data:`TEMPERATURE_FACTOR` times the bath
  temperature and the value that the kinetic energy of ``n_dof`` degrees of freedom in
  equilibrium exceeds with probability 1e-12 (chi-squared), so that the few degrees of freedom
  of a small molecule, whose temperature fluctuates widely, never stop a legitimate run.  The
  factor is 10 because a legitimate but strained start heats up for a while: a freshly solvated,
  unminimised p-xylene water box (1280 atoms, 1 fs, 300 K) reaches 1840 K about 10 steps in,
  then cools; runs that blow up reach tens of thousands of kelvin (methanol at 10 fs: 42000 K).
"""
from typing import Optional

import numpy as np
import openmm
from openmm import unit
from scipy.stats import chi2

from ..errors import SimulationError

BOND_STRETCH_FACTOR = 2.0
TEMPERATURE_FACTOR = 10.0
#: Floor of a reference bond length (nm), for pairs that start on top of each other
MIN_REFERENCE_NM = 0.05
#: Probability that an equilibrium kinetic energy exceeds the temperature limit at one check.
TEMPERATURE_TAIL_PROBABILITY = 1e-12


def _plain_nm(values) -> np.ndarray:
    if unit.is_quantity(values):
        values = values.value_in_unit(unit.nanometer)
    return np.array([[float(c) for c in v] for v in values], dtype=float)


def minimum_image(vectors: np.ndarray, box: Optional[np.ndarray]) -> np.ndarray:
    """Displacement vectors (n, 3) reduced to their shortest periodic image in a reduced-form
    (OpenMM) box; unchanged without a box."""
    if box is None:
        return vectors
    vectors = vectors.copy()
    for axis in (2, 1, 0):
        vectors -= np.outer(np.round(vectors[:, axis] / box[axis, axis]), box[axis])
    return vectors


def _describe(atom) -> str:
    residue = atom.residue
    return f"{residue.name} {residue.id} atom {atom.name} (index {atom.index})"


class BlowUpDetector:
    """Checks states of one System for bonds torn apart and temperature excursions.

    Parameters
    ----------
    system : openmm.System
    topology : openmm.app.Topology
        Its bonds are the ones checked.
    positions : Quantity or array (N, 3)
        The starting structure (nm), whose bond lengths are the reference where the System
        has no bond term or constraint for a pair.
    temperature_K : float
        Bath temperature.
    n_dof : int
        Degrees of freedom (for the temperature limit).
    box_vectors : Quantity or array (3, 3), optional
        Periodic box of ``positions`` (default: the System's).
    """

    def __init__(self, system: openmm.System, topology, positions, temperature_K: float, n_dof: int,
                 box_vectors=None):
        self.atoms = list(topology.atoms())
        pairs = np.array([(b[0].index, b[1].index) for b in topology.bonds()], dtype=int).reshape(-1, 2)
        self.pairs = pairs
        xyz = _plain_nm(positions)
        box = None
        if system.usesPeriodicBoundaryConditions():
            box = _plain_nm(box_vectors if box_vectors is not None else system.getDefaultPeriodicBoxVectors())
        start = np.linalg.norm(minimum_image(xyz[pairs[:, 1]] - xyz[pairs[:, 0]], box), axis=1) \
            if len(pairs) else np.zeros(0)
        known = self._force_field_lengths(system)
        reference = np.array([known.get((min(i, j), max(i, j)), 0.0) for i, j in pairs], dtype=float)
        # a stretched bond that the user kept on purpose (an allowed chain break) is its own reference
        self.reference = np.maximum(np.maximum(reference, start), MIN_REFERENCE_NM)
        self.molecule = self._molecules(len(self.atoms), pairs)
        self.temperature_K = float(temperature_K)
        self.n_dof = int(n_dof)
        tail = chi2.isf(TEMPERATURE_TAIL_PROBABILITY, self.n_dof) / self.n_dof if self.n_dof > 0 else np.inf
        self.temperature_limit_K = self.temperature_K * max(TEMPERATURE_FACTOR, float(tail))

    @staticmethod
    def _force_field_lengths(system) -> dict:
        lengths = {}
        for force in system.getForces():
            if isinstance(force, openmm.HarmonicBondForce):
                for index in range(force.getNumBonds()):
                    i, j, length, _ = force.getBondParameters(index)
                    lengths[(min(i, j), max(i, j))] = length.value_in_unit(unit.nanometer)
        for index in range(system.getNumConstraints()):
            i, j, length = system.getConstraintParameters(index)
            lengths[(min(i, j), max(i, j))] = length.value_in_unit(unit.nanometer)
        return lengths

    @staticmethod
    def _molecules(n_atoms: int, pairs: np.ndarray) -> np.ndarray:
        """Index of the molecule (connected component of the bonds) of every atom."""
        parent = list(range(n_atoms))

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, j in pairs:
            parent[root(int(i))] = root(int(j))
        return np.array([root(i) for i in range(n_atoms)], dtype=int)

    def check(self, positions, box=None, temperature_K: Optional[float] = None, step: int = 0,
              when: str = "") -> None:
        """Raise :class:`SimulationError` if ``positions`` (nm) or ``temperature_K`` show a blow-up.

        ``box`` (3, 3 in nm) for periodic Systems; ``when`` is added to the step in messages
        (e.g. "after minimisation").
        """
        at = f"at step {step}{' ' + when if when else ''}"
        self._check_bonds(positions, box, at)
        if temperature_K is not None and (not np.isfinite(temperature_K) or temperature_K > self.temperature_limit_K):
            raise SimulationError(
                f"the temperature is {temperature_K:.0f} K {at}, far above the bath's {self.temperature_K:g} K "
                f"(limit {self.temperature_limit_K:.0f} K for {self.n_dof} degrees of freedom): the simulation is "
                f"blowing up; use a smaller time step (or fewer MTS substeps) or check the starting structure")

    def _check_bonds(self, positions, box, at: str) -> None:
        if not len(self.pairs):
            return
        xyz = _plain_nm(positions)
        box = None if box is None else _plain_nm(box)
        lengths = np.linalg.norm(minimum_image(xyz[self.pairs[:, 1]] - xyz[self.pairs[:, 0]], box), axis=1)
        stretched = np.flatnonzero(~(lengths <= BOND_STRETCH_FACTOR * self.reference))
        if not len(stretched):
            return
        worst = stretched[np.argmax(np.nan_to_num(lengths[stretched] / self.reference[stretched], nan=np.inf))]
        i, j = self.pairs[worst]
        members = np.flatnonzero(self.molecule == self.molecule[i])
        residues = sorted({f"{self.atoms[k].residue.name} {self.atoms[k].residue.id}" for k in members})
        molecule = ", ".join(residues[:3]) + (f" and {len(residues) - 3} more residues" if len(residues) > 3 else "")
        raise SimulationError(
            f"bonded atoms {_describe(self.atoms[i])} and {_describe(self.atoms[j])} are {lengths[worst]:.3f} nm "
            f"apart {at} (reference {self.reference[worst]:.3f} nm; {len(stretched)} bond(s) stretched beyond "
            f"{BOND_STRETCH_FACTOR:g}x): the molecule ({molecule}) is coming apart, the simulation blew up; use a "
            f"smaller time step or check the starting structure (clashes, a ligand placed into the protein)")
