"""OpenMM residue-template generator for ligands (GAFF2/AM1-BCC or OpenFF).

Usage::

    from openmm.app import ForceField
    gen = LigandTemplateGenerator([load_ligand("ligand.sdf")])
    ff = ForceField("amber14-all.xml", "amber14/tip3p.xml")
    ff.registerTemplateGenerator(gen.generator)
    system = ff.createSystem(topology, ...)

When ``ForceField.createSystem`` meets a residue without a template it calls
:meth:`LigandTemplateGenerator.generator`.  The generator looks for a known
molecule whose graph (elements + bonds, hydrogens included) is isomorphic to
the residue, parametrises it (once per molecule and generator; the disk cache
of :mod:`openmm_hybrid.mm.parameters` makes later runs cheap) and loads an
ffxml template using the residue's own atom names and name.  Residues it does
not know make it return False, so OpenMM reports its usual "No template
found" error.
"""
from __future__ import annotations

import hashlib
import io
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple, Union

import networkx as nx
from rdkit import Chem
from networkx.algorithms import isomorphism as nx_iso

from ..errors import LigandError, ParameterizationError
from .ligand import Ligand, load_ligand, _VALID_NAME
from .parameters import LigandParameters, parametrize

__all__ = ["LigandTemplateGenerator", "TemplateRecord"]


@dataclass
class TemplateRecord:
    """One residue template created by a :class:`LigandTemplateGenerator`.

    Attributes
    ----------
    residue_name : str
        Name of the topology residue that triggered the template.
    residue_index : int
        Index of that residue in its topology.
    template_name : str
        Name of the template registered in the ForceField.
    molecule_name : str
        :attr:`Ligand.name` of the matching molecule.
    smiles : str
        Canonical isomeric SMILES of the molecule.
    net_charge : int
        Net charge of the molecule, in e.
    forcefield : str
        Ligand force field (``"gaff2"``, ``"openff-2.2.0"``).
    charge_method : str
        Charge method (``"bcc"`` = AM1-BCC, ...).
    from_cache : bool
        Whether the parameters came from the disk cache.
    """

    residue_name: str
    residue_index: int
    template_name: str
    molecule_name: str
    smiles: str
    net_charge: int
    forcefield: str
    charge_method: str
    from_cache: bool


def _element_key(element) -> Optional[int]:
    return None if element is None else element.atomic_number


def _mol_graph(ligand: Ligand) -> nx.Graph:
    g = nx.Graph()
    for a in ligand.mol.GetAtoms():
        g.add_node(a.GetIdx(), element=a.GetAtomicNum())
    g.add_edges_from((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in ligand.mol.GetBonds())
    return g


def _heavy(g: nx.Graph) -> nx.Graph:
    return g.subgraph([n for n, d in g.nodes(data=True) if d["element"] != 1]).copy()


def _same_element(a, b) -> bool:
    return a["element"] == b["element"]


class LigandTemplateGenerator:
    """Residue-template generator parametrising known ligands on demand.

    Parameters
    ----------
    molecules : iterable, optional
        Ligands to recognise: :class:`~openmm_hybrid.mm.ligand.Ligand` objects,
        file paths, SMILES strings or RDKit molecules (see
        :func:`~openmm_hybrid.mm.ligand.load_ligand`).
    forcefield : str, optional
        ``"gaff2"`` (GAFF2 + AM1-BCC via AmberTools, default) or an OpenFF
        force field such as ``"openff-2.2.0"`` (needs openff-toolkit).
    cache : bool, optional
        Use the on-disk parameter cache (default True).
    charge_method : {"bcc", "abcg2", "gas"}, optional
        GAFF2 charge method (AM1-BCC by default; see
        :data:`~openmm_hybrid.mm.parameters.CHARGE_METHOD_COSTS`).
    parameters : iterable of LigandParameters, optional
        Parameters computed beforehand (e.g. in worker processes) for some of the ``molecules``, in
        their atom order; used instead of parametrising those molecules again.

    Attributes
    ----------
    records : list of TemplateRecord
        Templates created so far, in order (residue name, net charge, ...):
        one per molecule and ForceField.  Further residues of the same
        molecule match the loaded template directly (OpenMM does not call the
        generator for them), so they add no record.
    """

    def __init__(self, molecules: Iterable = (), forcefield: str = "gaff2", cache: bool = True,
                 charge_method: str = "bcc", parameters: Iterable[LigandParameters] = ()):
        self.forcefield = forcefield
        self.cache = cache
        self.charge_method = charge_method
        self._given = {p.identity_key: p for p in parameters}
        self._ligands: List[Ligand] = []
        self._graphs: List[nx.Graph] = []
        self._heavy_graphs: List[nx.Graph] = []
        self._params: Dict[int, LigandParameters] = {}
        self._prefixes: set = set()  # atom-type prefixes of the known molecules
        # ForceField -> indices of molecules whose template is loaded in it
        self._loaded: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self.records: List[TemplateRecord] = []
        self.add_molecules(molecules)

    # ---------------------------------------------------------------- molecules
    def add_molecules(self, molecules: Union[Iterable, Ligand, str]) -> None:
        """Add molecules to recognise.

        Parameters
        ----------
        molecules : Ligand, path, SMILES, RDKit Mol, or an iterable of these
        """

        if isinstance(molecules, (Ligand, str, Chem.Mol)) or hasattr(molecules, "__fspath__"):
            molecules = [molecules]
        for spec in molecules:
            ligand = spec if isinstance(spec, Ligand) else load_ligand(spec)
            if any(l.identity_key == ligand.identity_key for l in self._ligands):
                continue  # same molecule already known
            self._ligands.append(ligand)
            self._prefixes.add(self._type_prefix(ligand))
            g = _mol_graph(ligand)
            self._graphs.append(g)
            self._heavy_graphs.append(_heavy(g))

    @property
    def molecules(self) -> List[Ligand]:
        """The known ligands."""
        return list(self._ligands)

    @property
    def residue_charges(self) -> Dict[str, int]:
        """Net charge (e) by residue name of every residue parametrised so far."""
        return {r.residue_name: r.net_charge for r in self.records}

    def parameters(self, ligand_index: int) -> LigandParameters:
        """Parameters of known molecule ``ligand_index`` (computed once per generator)."""
        if ligand_index not in self._params:
            ligand = self._ligands[ligand_index]
            given = self._given.get(ligand.identity_key)
            if given is not None and given.elements == ligand.elements:
                self._params[ligand_index] = given
            else:
                self._params[ligand_index] = parametrize(ligand, self.forcefield, cache=self.cache,
                                                         charge_method=self.charge_method)
        return self._params[ligand_index]

    def _type_prefix(self, ligand: Ligand) -> str:
        digest = hashlib.sha256(f"{ligand.identity_key}|{self.forcefield}".encode()).hexdigest()[:10]
        return f"ohl{digest}"

    def owns_atom_type(self, type_name: str) -> bool:
        """Whether ``type_name`` is an atom type of a template this generator makes.

        Templates give every atom its own type ``"<prefix>-<i>"`` with a prefix derived from
        the molecule and the force field, so the atoms parametrised from this generator's
        molecules can be recognised in ``ForceField.createSystem`` (the default ML region of
        :class:`~openmm_hybrid.forcefield.HybridForceField`).
        """
        return str(type_name).rsplit("-", 1)[0] in self._prefixes

    # ---------------------------------------------------------------- matching
    def _residue_graph(self, residue) -> Optional[nx.Graph]:
        atoms = list(residue.atoms())
        if any(a.element is None for a in atoms):
            return None
        index = {a: i for i, a in enumerate(atoms)}
        g = nx.Graph()
        for i, a in enumerate(atoms):
            g.add_node(i, element=a.element.atomic_number)
        for bond in residue.internal_bonds():
            g.add_edge(index[bond[0]], index[bond[1]])
        return g

    def _name_mapping(self, residue, g: nx.Graph, idx: int) -> Optional[Dict[int, int]]:
        """Residue -> molecule mapping by atom name, if the names identify an isomorphism.

        Among the symmetry-equivalent mappings this keeps the one the names
        imply (e.g. a topology built from the same :class:`Ligand`), so that
        order-dependent terms (Amber impropers) land on the intended atoms.
        """
        ligand = self._ligands[idx]
        by_name = {n: i for i, n in enumerate(ligand.atom_names)}
        names = [a.name for a in residue.atoms()]
        if len(set(names)) != len(names) or set(names) != set(by_name):
            return None
        mapping = {k: by_name[n] for k, n in enumerate(names)}
        mg = self._graphs[idx]
        if any(g.nodes[k]["element"] != mg.nodes[m]["element"] for k, m in mapping.items()):
            return None
        if g.number_of_edges() != mg.number_of_edges():
            return None
        if not all(mg.has_edge(mapping[a], mapping[b]) for a, b in g.edges()):
            return None
        return mapping

    def match_residue(self, residue) -> Optional[Tuple[int, Dict[int, int]]]:
        """Find the known molecule matching ``residue``.

        Returns
        -------
        (int, dict) or None
            Index of the molecule and a mapping residue-atom position ->
            molecule atom index, or None when no molecule matches.

        Raises
        ------
        LigandError
            The heavy atoms match a known molecule but the hydrogens do not.
        """
        g = self._residue_graph(residue)
        if g is None:
            return None
        formula = Counter(d["element"] for _, d in g.nodes(data=True))
        for idx, mg in enumerate(self._graphs):
            if Counter(d["element"] for _, d in mg.nodes(data=True)) != formula:
                continue
            by_name = self._name_mapping(residue, g, idx)
            if by_name is not None:
                return idx, by_name
            gm = nx_iso.GraphMatcher(g, mg, node_match=_same_element)
            if gm.is_isomorphic():
                return idx, dict(gm.mapping)
        heavy = _heavy(g)
        if heavy.number_of_nodes() == 0:
            return None
        for idx, hg in enumerate(self._heavy_graphs):
            if hg.number_of_nodes() != heavy.number_of_nodes() or hg.number_of_edges() != heavy.number_of_edges():
                continue
            if nx_iso.GraphMatcher(heavy, hg, node_match=_same_element).is_isomorphic():
                ligand = self._ligands[idx]
                n_h_res = g.number_of_nodes() - heavy.number_of_nodes()
                n_h_mol = self._graphs[idx].number_of_nodes() - hg.number_of_nodes()
                if n_h_res == n_h_mol:
                    detail = "the same number of hydrogens but on different atoms"
                else:
                    detail = f"{n_h_res} hydrogens in the residue, {n_h_mol} in the molecule"
                if any(True for _ in residue.external_bonds()):
                    detail += "; the residue is also bonded to other residues (covalent ligands are not supported)"
                raise LigandError(
                    f"residue {residue.name} {residue.index} matches the heavy atoms of ligand {ligand.name!r} "
                    f"but its hydrogens do not match the molecule ({detail}): protonate the ligand in the "
                    "structure the same way as in the ligand file (or give the ligand file matching the structure)")
        return None

    # ---------------------------------------------------------------- OpenMM hook
    def generator(self, forcefield, residue) -> bool:
        """Template generator for ``ForceField.registerTemplateGenerator``.

        Parameters
        ----------
        forcefield : openmm.app.ForceField
            The force field to which the template is added.
        residue : openmm.app.topology.Residue
            The residue without a template.

        Returns
        -------
        bool
            True if a template for ``residue`` was added, False if the residue
            is not one of the known molecules.
        """
        match = self.match_residue(residue)
        if match is None:
            return False
        idx, mapping = match
        if any(True for _ in residue.external_bonds()):
            raise LigandError(
                f"residue {residue.name} {residue.index} matches ligand {self._ligands[idx].name!r} but is "
                "bonded to other residues; covalently bound ligands are not supported")
        loaded = self._loaded.setdefault(forcefield, set())
        if idx in loaded:
            # The template is already in this ForceField but did not match the residue
            # (e.g. different external bonds): nothing more this generator can do.
            return False
        ligand = self._ligands[idx]
        params = self.parameters(idx)

        # The template lists the atoms in the residue's order (parameters
        # renumbered through the graph isomorphism), so that OpenMM matches this
        # residue onto the template atom for atom; names are the residue's own
        # when usable, else the ligand's.
        res_atoms = list(residue.atoms())
        mol_to_res = [0] * ligand.n_atoms
        for res_pos, mol_idx in mapping.items():
            mol_to_res[mol_idx] = res_pos
        params = params.remapped(mol_to_res)
        names = [a.name for a in res_atoms]
        if len(set(names)) != len(names) or not all(n and _VALID_NAME.match(n) for n in names):
            names = [ligand.atom_names[mapping[k]] for k in range(len(res_atoms))]

        template_name = residue.name
        existing = getattr(forcefield, "_templates", {})
        n = 1
        while template_name in existing:
            n += 1
            template_name = f"{residue.name}_{n}"
        xml = params.to_ffxml(template_name, names, self._type_prefix(ligand))
        try:
            forcefield.loadFile(io.StringIO(xml))
        except Exception as exc:
            raise ParameterizationError(
                f"could not load the force-field template for ligand {ligand.name!r} (residue "
                f"{residue.name} {residue.index}): {exc}") from exc
        loaded.add(idx)
        self.records.append(TemplateRecord(
            residue_name=residue.name, residue_index=residue.index, template_name=template_name,
            molecule_name=ligand.name, smiles=ligand.canonical_smiles, net_charge=ligand.net_charge,
            forcefield=params.forcefield, charge_method=params.charge_method, from_cache=params.from_cache))
        return True
