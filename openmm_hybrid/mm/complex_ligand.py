"""A small molecule taken from a structure file: heavy atoms from a residue, chemistry from a template.

A crystal structure gives a ligand or a cofactor as a HETATM residue: heavy-atom coordinates, no
bond orders, usually no hydrogens.  :func:`molecule_from_residue` turns such a residue into a
:class:`~openmm_hybrid.mm.ligand.Ligand` with a *template* (SMILES or an SDF/MOL2 file) that says
what the molecule is:

1. bonds between the residue's heavy atoms are inferred from distances (covalent radii plus
   0.45 angstrom), so missing or partial CONECT records do not matter;
2. the residue must be the template's heavy-atom graph (same atom count, elements and bonds); a
   template that does not match is refused with what differs;
3. bond orders and formal charges are copied from the template, hydrogens are added as the
   template has them (its protonation state), with coordinates from the heavy atoms;
   hydrogens the file already has are kept where they are when they are exactly the template's;
4. stereochemistry follows the structure's 3D coordinates.

The heavy atoms keep their coordinates and names; hydrogens are named H1, H2, ... (skipping
names in use).
"""
from __future__ import annotations

from collections import Counter
from typing import List, Optional, Sequence

import networkx as nx
import numpy as np
from networkx.algorithms import isomorphism as nx_iso
from openmm import unit
from rdkit import Chem

from ..errors import LigandError, StructureError
from .ligand import _VALID_NAME, Ligand, parse_smiles, read_ligand_records, select_record
from .residue_labels import residue_label

__all__ = ["load_template", "molecule_from_residue", "residues_named"]

#: Added to the sum of covalent radii when bonds are inferred from distances (angstrom).
BOND_TOLERANCE_ANGSTROM = 0.45


def load_template(spec) -> "Chem.Mol":
    """The template molecule of ``spec``: a SMILES string, an SDF/MOL2 file (one molecule) or an RDKit Mol.

    Only its chemistry is used (elements, bonds, bond orders, formal charges, hydrogens); its
    coordinates, if any, are not.  Hydrogens are made explicit.

    Raises
    ------
    LigandError
        Unparsable SMILES or file, or a file of several molecules.
    """
    if isinstance(spec, Chem.Mol):
        mol = Chem.Mol(spec)
    else:
        text = str(spec).strip()
        lowered = text.lower()
        if lowered.endswith((".sdf", ".sd", ".mol", ".mol2")):
            mol = select_record(read_ligand_records(text), f"'{text}'").mol
        else:
            mol = parse_smiles(text)
            if mol is None:
                raise LigandError(f"could not parse the template {text!r} as SMILES (and it is not an .sdf/.mol2 "
                                  "file): check the SMILES")
    return Chem.AddHs(mol)


def residues_named(topology, resname: str) -> list:
    """The residues of ``topology`` called ``resname``."""
    return [r for r in topology.residues() if r.name == resname]


def _formula(elements: Sequence[str]) -> str:
    counts = Counter(elements)
    order = [e for e in ("C", "H") if e in counts] + sorted(e for e in counts if e not in ("C", "H"))
    return "".join(f"{e}{counts[e] if counts[e] > 1 else ''}" for e in order)


def _graph(elements: Sequence[str], bonds) -> nx.Graph:
    g = nx.Graph()
    for i, element in enumerate(elements):
        g.add_node(i, element=element)
    g.add_edges_from(bonds)
    return g


def _inferred_bonds(elements: Sequence[str], xyz: np.ndarray) -> List[tuple]:
    table = Chem.GetPeriodicTable()
    radii = np.array([table.GetRcovalent(e) for e in elements])
    distances = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    limit = radii[:, None] + radii[None, :] + BOND_TOLERANCE_ANGSTROM
    i, j = np.nonzero(np.triu(distances < limit, k=1))
    return list(zip(i.tolist(), j.tolist()))


def _mismatch(residue, res_elements, res_bonds, tmpl_elements, tmpl_bonds, template_label) -> Optional[str]:
    """What differs between the residue's heavy atoms and the template's, or None if they match."""
    what = f"residue {residue_label(residue)}"
    if len(res_elements) != len(tmpl_elements):
        return (f"{what} has {len(res_elements)} heavy atoms ({_formula(res_elements)}), the template "
                f"{template_label} has {len(tmpl_elements)} ({_formula(tmpl_elements)})")
    if Counter(res_elements) != Counter(tmpl_elements):
        return (f"the elements of {what} ({_formula(res_elements)}) differ from those of the template "
                f"{template_label} ({_formula(tmpl_elements)})")
    res_graph, tmpl_graph = _graph(res_elements, res_bonds), _graph(tmpl_elements, tmpl_bonds)
    if nx_iso.GraphMatcher(res_graph, tmpl_graph, node_match=lambda a, b: a["element"] == b["element"]).is_isomorphic():
        return None
    res_degrees = Counter((d["element"], res_graph.degree(n)) for n, d in res_graph.nodes(data=True))
    tmpl_degrees = Counter((d["element"], tmpl_graph.degree(n)) for n, d in tmpl_graph.nodes(data=True))
    differing = sorted(set(res_degrees.items()) ^ set(tmpl_degrees.items()))
    shown = ", ".join(f"{n} {e} with {k} heavy neighbours" for (e, k), n in differing[:6])
    return (f"the connectivity of {what} differs from the template {template_label}: the residue has "
            f"{len(res_bonds)} bonds between heavy atoms (inferred from distances), the template {len(tmpl_bonds)}"
            + (f"; atoms by neighbour count that are not in both: {shown}" if shown else
               "; same neighbour counts, different bonding pattern"))


def molecule_from_residue(residue, positions, template, template_label: Optional[str] = None,
                          name: Optional[str] = None) -> Ligand:
    """The molecule of a structure residue, with bond orders, charges and hydrogens from ``template``.

    Parameters
    ----------
    residue : openmm.app.topology.Residue
        The residue (a HETATM ligand or cofactor), hydrogens optional.
    positions : Quantity or array
        Positions of the residue's topology (nm).
    template : rdkit.Chem.Mol, str or path
        The molecule as a template (see :func:`load_template`).
    template_label : str, optional
        How to name the template in messages (default: its SMILES).
    name : str, optional
        Name of the returned ligand (default: ``"<resname> <number> (chain X)"``).

    Returns
    -------
    Ligand
        Residue name, heavy-atom names and coordinates of the residue; ``source`` says whether
        the hydrogens were kept from the file or added.

    Raises
    ------
    StructureError
        The residue does not match the template (atom counts, elements or connectivity, named in
        the message), or has atoms of unknown element.
    """
    tmpl = load_template(template)
    template_label = template_label or repr(Chem.MolToSmiles(Chem.RemoveHs(tmpl)))
    atoms = list(residue.atoms())
    if any(a.element is None for a in atoms):
        raise StructureError(f"residue {residue_label(residue)} has atoms of unknown element: fix the element "
                             "columns of the structure file")
    xyz_all = np.asarray(positions.value_in_unit(unit.angstrom) if unit.is_quantity(positions) else
                         np.asarray(positions) * 10.0, dtype=float)
    heavy = [a for a in atoms if a.element.symbol not in ("H", "D")]
    file_h = [a for a in atoms if a.element.symbol in ("H", "D")]
    res_elements = [a.element.symbol for a in heavy]
    res_xyz = np.array([xyz_all[a.index] for a in heavy])
    res_bonds = _inferred_bonds(res_elements, res_xyz)

    tmpl_heavy = Chem.RemoveHs(tmpl)
    Chem.Kekulize(tmpl_heavy, clearAromaticFlags=True)
    tmpl_elements = [a.GetSymbol() for a in tmpl_heavy.GetAtoms()]
    tmpl_bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in tmpl_heavy.GetBonds()]
    problem = _mismatch(residue, res_elements, res_bonds, tmpl_elements, tmpl_bonds, template_label)
    if problem:
        raise StructureError(f"{problem}: give the template of this residue's molecule (the SMILES of the "
                             "heavy atoms in the file, with the protonation state to simulate)")
    matcher = nx_iso.GraphMatcher(_graph(res_elements, res_bonds), _graph(tmpl_elements, tmpl_bonds),
                                  node_match=lambda a, b: a["element"] == b["element"])
    res_to_tmpl = next(matcher.isomorphisms_iter())

    mol = Chem.RWMol()
    for k, element in enumerate(res_elements):
        t = tmpl_heavy.GetAtomWithIdx(res_to_tmpl[k])
        atom = Chem.Atom(element)
        atom.SetFormalCharge(t.GetFormalCharge())
        atom.SetNumExplicitHs(t.GetTotalNumHs())
        atom.SetNoImplicit(True)
        mol.AddAtom(atom)
    tmpl_to_res = {t: k for k, t in res_to_tmpl.items()}
    for bond in tmpl_heavy.GetBonds():
        mol.AddBond(tmpl_to_res[bond.GetBeginAtomIdx()], tmpl_to_res[bond.GetEndAtomIdx()], bond.GetBondType())
    conformer = Chem.Conformer(len(res_elements))
    for k, p in enumerate(res_xyz):
        conformer.SetAtomPosition(k, p.tolist())
    conformer.Set3D(True)
    mol.AddConformer(conformer, assignId=True)
    mol = mol.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:
        raise StructureError(f"the template {template_label} cannot be applied to residue {residue_label(residue)}: "
                             f"{exc}") from exc
    mol = Chem.AddHs(mol, addCoords=True)
    hydrogens = "added"
    if file_h:
        hydrogens = "added (the file's hydrogens do not match the template's)"
        if _keep_file_hydrogens(mol, len(res_elements), res_xyz, np.array([xyz_all[a.index] for a in file_h])):
            hydrogens = "kept from the file"
    Chem.AssignStereochemistryFrom3D(mol)

    heavy_names = [a.name for a in heavy]
    if len(set(heavy_names)) != len(heavy_names) or not all(_VALID_NAME.match(n) for n in heavy_names):
        heavy_names = [f"{e}{i + 1}" for i, e in enumerate(res_elements)]
    names, used, counter = list(heavy_names), set(heavy_names), 0
    for _ in range(mol.GetNumAtoms() - len(heavy_names)):
        counter += 1
        while f"H{counter}" in used:
            counter += 1
        names.append(f"H{counter}")
        used.add(names[-1])
    label = name or residue_label(residue)
    return Ligand(mol, resname=residue.name, name=label, atom_names=names,
                  source=f"residue {residue_label(residue)} with template {template_label}; hydrogens {hydrogens}")


def _keep_file_hydrogens(mol, n_heavy: int, heavy_xyz: np.ndarray, file_h_xyz: np.ndarray) -> bool:
    """Put the file's hydrogens where ``mol``'s added ones are if each heavy atom has as many; True if done."""
    parents = np.argmin(np.linalg.norm(file_h_xyz[:, None, :] - heavy_xyz[None, :, :], axis=-1), axis=1)
    by_parent = {k: [file_h_xyz[i] for i in np.nonzero(parents == k)[0]] for k in range(n_heavy)}
    added = {k: [n.GetIdx() for n in mol.GetAtomWithIdx(k).GetNeighbors() if n.GetAtomicNum() == 1]
             for k in range(n_heavy)}
    if any(len(by_parent[k]) != len(added[k]) for k in range(n_heavy)):
        return False
    conformer = mol.GetConformer()
    for k in range(n_heavy):
        for index, xyz in zip(added[k], by_parent[k]):
            conformer.SetAtomPosition(index, xyz.tolist())
    return True

