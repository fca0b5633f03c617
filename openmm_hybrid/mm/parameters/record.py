"""The force-field parameters of one small molecule, and their OpenMM ForceField XML.

Units used throughout: mass in dalton, charge in elementary charges (e), length/sigma in nm,
energies/epsilon/torsion barriers in kJ/mol, bond force constants in kJ/mol/nm^2, angles in rad,
angle force constants in kJ/mol/rad^2.  Bond and angle energies follow OpenMM: E = k/2 (x - x0)^2.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

#: 1-4 scale factors of Amber force fields; written exactly as in amber14-all.xml
#: so that the ligand XML and the Amber XML files can be loaded together.
COULOMB14SCALE = 0.8333333333333334
LJ14SCALE = 0.5

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


