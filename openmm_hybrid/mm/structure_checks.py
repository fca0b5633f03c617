"""Sanity checks of a build: argument ranges, chain breaks, clashes, masses.

:func:`check_build_arguments` refuses out-of-range build settings (padding, ionic strength,
cutoff, hydrogen mass, pH) before any work.  A structure that passes OpenMM's template matching can still be physically broken:

- *chain breaks*: OpenMM bonds consecutive residues of a chain whatever their distance, so a
  protein with residues missing gets a peptide bond across the gap (0.95 nm for three missing
  residues, against 0.133 nm at equilibrium), which the first minimisation step turns into a
  huge force;
- *clashes*: two heavy atoms much closer than any non-bonded contact (a ligand placed onto a
  protein atom), whose Lennard-Jones energy is astronomical;
- *masses*: hydrogen mass repartitioning moves mass from the bonded heavy atom, which a
  large hydrogen mass makes negative.

:func:`check_structure` refuses the first two (chain breaks can be allowed explicitly),
:func:`check_masses` the third, with messages naming the residues and atoms.
"""
from typing import Collection, List, Optional, Tuple

import numpy as np
import openmm
from openmm import unit
from scipy.spatial import cKDTree

from .._util import check_range, progress
from ..errors import HybridError, StructureError

#: Peptide C-N bonds longer than this (nm) are chain breaks (equilibrium 0.133 nm; the longest
#: in a well-refined structure about 0.15 nm).
PEPTIDE_BOND_LIMIT_NM = 0.2
#: Heavy atoms more than two bonds apart and closer than this (nm) clash: the shortest such
#: contacts in protein structures (strong hydrogen bonds, 1-4 pairs) are about 0.24 nm, and a
#: covalent bond between heavy atoms is 0.12-0.2 nm long.
CLASH_LIMIT_NM = 0.17
#: Refusals list at most this many offending places.
MAX_LISTED = 5


def check_build_arguments(padding=None, ionic_strength=None, nonbonded_cutoff=None, hydrogen_mass=None,
                          ph: Optional[float] = None) -> None:
    """Refuse build settings outside their range (Quantities, or plain numbers in nm, molar, amu).

    Padding and cutoff must be positive, the ionic strength zero or positive, a hydrogen mass
    at least that of hydrogen (1.008 amu; the upper limit depends on the molecule, see
    :func:`check_masses`), the pH within 0-14.

    Raises
    ------
    HybridError
    """
    def plain(value, default_unit):
        return value.value_in_unit(default_unit) if unit.is_quantity(value) else value

    if padding is not None:
        check_range("padding", plain(padding, unit.nanometer), 0.0, include_minimum=False, units="nm",
                    hint="it is the solvent layer around the solute (e.g. 1.0)")
    if ionic_strength is not None:
        check_range("ionic strength", plain(ionic_strength, unit.molar), 0.0, units="molar",
                    hint="0 adds only neutralising ions")
    if nonbonded_cutoff is not None:
        check_range("nonbonded cutoff", plain(nonbonded_cutoff, unit.nanometer), 0.0, include_minimum=False,
                    units="nm")
    if hydrogen_mass is not None:
        check_range("hydrogen mass (--hmr)", plain(hydrogen_mass, unit.amu), 1.008, units="amu",
                    hint="hydrogen mass repartitioning raises it, usually to 3-4 amu")
    if ph is not None:
        check_range("pH", ph, 0.0, 14.0)


def _positions_nm(positions) -> np.ndarray:
    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    return np.array([[float(c) for c in p] for p in positions], dtype=float)


def describe_atom(atom) -> str:
    """``chain A residue ALA 12 atom CB`` (the ids written in the input file)."""
    residue = atom.residue
    chain = (residue.chain.id or "").strip() or str(residue.chain.index)
    return f"chain {chain} residue {residue.name} {residue.id} atom {atom.name}"


def find_chain_breaks(topology, positions, limit_nm: float = PEPTIDE_BOND_LIMIT_NM) -> List[Tuple]:
    """Peptide bonds longer than ``limit_nm``: ``(C atom, N atom, length in nm)`` for each."""
    xyz = _positions_nm(positions)
    breaks = []
    for bond in topology.bonds():
        a, b = bond[0], bond[1]
        if a.residue is b.residue or {a.name, b.name} != {"C", "N"}:
            continue
        carbon, nitrogen = (a, b) if a.name == "C" else (b, a)
        length = float(np.linalg.norm(xyz[carbon.index] - xyz[nitrogen.index]))
        if length > limit_nm:
            breaks.append((carbon, nitrogen, length))
    return breaks


def find_clashes(topology, positions, limit_nm: float = CLASH_LIMIT_NM) -> List[Tuple]:
    """Heavy-atom pairs more than two bonds apart and closer than ``limit_nm``:
    ``(atom, atom, distance in nm)``, closest first."""
    xyz = _positions_nm(positions)
    atoms = list(topology.atoms())
    heavy = np.array([a.index for a in atoms if a.element is not None and a.element.symbol != "H"], dtype=int)
    if len(heavy) < 2:
        return []
    neighbours = [set() for _ in atoms]
    for bond in topology.bonds():
        neighbours[bond[0].index].add(bond[1].index)
        neighbours[bond[1].index].add(bond[0].index)
    clashes = []
    for p, q in cKDTree(xyz[heavy]).query_pairs(limit_nm, output_type="ndarray"):
        i, j = int(heavy[p]), int(heavy[q])
        if j in neighbours[i] or neighbours[i] & neighbours[j]:  # 1-2 and 1-3 pairs are closer by nature
            continue
        clashes.append((atoms[i], atoms[j], float(np.linalg.norm(xyz[i] - xyz[j]))))
    return sorted(clashes, key=lambda c: c[2])


def check_structure(topology, positions, allow_chain_breaks: bool = False,
                    modelled_residues: Collection[Tuple[str, str, str]] = ()) -> None:
    """Refuse chain breaks (unless ``allow_chain_breaks``) and heavy-atom clashes.

    Parameters
    ----------
    topology : openmm.app.Topology
        With bonds (as after ``Modeller.addHydrogens`` and adding the ligand).
    positions : Quantity or array (N, 3)
        Positions (nm).
    allow_chain_breaks : bool
        Build across chain breaks anyway (the peptide bond over the gap stays, stretched).
    modelled_residues : collection of (chain id, residue id, residue name)
        Residues whose coordinates a modelling step guessed (PDBFixer's added residues and atoms):
        clashes involving them are reported, not refused, since minimisation moves them apart.

    Raises
    ------
    StructureError
        Naming the residues of each break (with the C-N distance) or the atoms of each clash.
    """
    breaks = find_chain_breaks(topology, positions)
    if breaks and not allow_chain_breaks:
        listed = "; ".join(f"between {describe_atom(c).rsplit(' atom', 1)[0]} and residue {n.residue.name} "
                           f"{n.residue.id}: C-N {length:.3f} nm" for c, n, length in breaks[:MAX_LISTED])
        more = f" (and {len(breaks) - MAX_LISTED} more)" if len(breaks) > MAX_LISTED else ""
        raise StructureError(
            f"the protein chain is broken {len(breaks)} time(s), residues are missing: {listed}{more} (a peptide "
            f"bond is {0.133:.3f} nm; OpenMM would bond the residues across the gap). Add the missing residues "
            f"with --prepare (PDBFixer; Python: prepare=True), or pass --allow-chain-breaks (Python: allow_chain_breaks=True) to build "
            f"with the stretched bonds")
    modelled = set(modelled_residues)

    def guessed(atom) -> bool:
        return (atom.residue.chain.id, atom.residue.id, atom.residue.name) in modelled

    clashes = []
    for a, b, d in find_clashes(topology, positions):
        if guessed(a) or guessed(b):
            progress(f"note: {describe_atom(a)} and {describe_atom(b)} are {d:.3f} nm apart; one of them was "
                     f"modelled by PDBFixer (--prepare): minimise before dynamics ('run' does)")
        else:
            clashes.append((a, b, d))
    if clashes:
        listed = "; ".join(f"{describe_atom(a)} and {describe_atom(b)}: {d:.3f} nm" for a, b, d in clashes[:MAX_LISTED])
        more = f" (and {len(clashes) - MAX_LISTED} more)" if len(clashes) > MAX_LISTED else ""
        raise StructureError(
            f"{len(clashes)} pair(s) of heavy atoms are closer than {CLASH_LIMIT_NM} nm without being bonded: "
            f"{listed}{more}. The atoms overlap (e.g. a ligand placed into the protein); fix the coordinates "
            f"(dock or place the ligand into the pocket)")


def check_masses(system: openmm.System, topology, hydrogen_mass_amu: Optional[float] = None) -> None:
    """Refuse non-positive masses of atoms that had mass (hydrogen mass repartitioning gone too far).

    Raises
    ------
    HybridError
        Naming the first atoms and the largest hydrogen mass that keeps every atom positive.
    """
    atoms = list(topology.atoms())
    bad = [(atom, system.getParticleMass(atom.index).value_in_unit(unit.amu)) for atom in atoms
           if atom.element is not None and system.getParticleMass(atom.index).value_in_unit(unit.amu) <= 0]
    if not bad:
        return
    hydrogens = {}
    for bond in topology.bonds():
        for heavy, other in ((bond[0], bond[1]), (bond[1], bond[0])):
            if other.element is not None and other.element.symbol == "H" and heavy.element is not None \
                    and heavy.element.symbol != "H":
                hydrogens.setdefault(heavy.index, []).append(other)
    # each hydrogen takes (m_H' - m_H) from its heavy atom: the heavy mass stays positive while
    # m_H' < m_H + m_heavy / n_H
    limits = [atom.element.mass.value_in_unit(unit.amu) / len(hs) + hs[0].element.mass.value_in_unit(unit.amu)
              for atom in atoms for hs in [hydrogens.get(atom.index)] if hs]
    given = f"hydrogen mass {hydrogen_mass_amu:g} amu" if hydrogen_mass_amu is not None else "the masses"
    listed = ", ".join(f"{describe_atom(atom)} ({mass:.2f} amu)" for atom, mass in bad[:MAX_LISTED])
    raise HybridError(f"{given} leaves {len(bad)} atom(s) with zero or negative mass: {listed}; hydrogen mass "
                      f"repartitioning takes the hydrogens' extra mass from the bonded heavy atom, so the hydrogen "
                      f"mass must stay below {min(limits) if limits else 0:.2f} amu here (3 to 4 amu is usual)")
