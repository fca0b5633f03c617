"""Ligand input: read a small molecule from a file, an RDKit molecule or SMILES.

The central object is :class:`Ligand`, an RDKit molecule with *explicit*
hydrogens and one 3D conformer, plus the bookkeeping the rest of the package
needs (residue name, unique PDB-safe atom names, net charge, identity key for
caching).  :func:`load_ligand` builds one from any supported input and refuses
inputs that cannot be simulated as given (missing hydrogens, 2D coordinates,
several molecules and no choice among them, several fragments) with a message naming the problem.

Rules
-----
* Files (``.sdf``/``.sd``/``.mol``/``.mol2``) are read with RDKit, keeping the
  hydrogens (``removeHs=False``) and sanitising.  A file of several molecules
  (a ligand series) is read record by record (:func:`read_ligand_records`);
  :func:`load_ligand` then needs the molecule's title (``name``) or position
  (``index``), and refuses without, listing the molecules present.  The
  molecule must have all hydrogens explicit and 3D coordinates; nothing is
  added or moved.
* A string that is not an existing path and does not end in a molecular-file
  extension is parsed as SMILES: hydrogens are added, one conformer is
  embedded with ETKDG (fixed random seed) and MMFF94-optimised.
* An RDKit ``Mol`` with a 3D conformer is used as is (it must then have
  explicit hydrogens); an RDKit ``Mol`` without conformer is treated like
  SMILES (hydrogens added, conformer embedded).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputFileError, LigandError

try:  # RDKit is a hard dependency of the ligand code; fail with a clear message.
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem
except ImportError as exc:  # pragma: no cover - environment problem
    raise ImportError("openmm_hybrid.mm.ligand needs RDKit (pip install rdkit)") from exc

__all__ = ["Ligand", "LigandRecord", "load_ligand", "ligand_from_record", "read_ligand_records", "select_record",
           "SUPPORTED_EXTENSIONS"]

#: File extensions :func:`load_ligand` reads (lower case, with dot).
SUPPORTED_EXTENSIONS = (".sdf", ".sd", ".mol", ".mol2")

# Extensions that mark a string as a *file name* (supported or not), so that a
# typo in a file name is reported as a missing file rather than as bad SMILES.
_FILE_LIKE_EXTENSIONS = SUPPORTED_EXTENSIONS + (
    ".pdb", ".ent", ".cif", ".mmcif", ".pdbqt", ".xyz", ".smi", ".smiles", ".mae", ".maegz",
    ".gro", ".crd", ".inpcrd", ".rst7", ".prmtop", ".parm7", ".psf", ".txt", ".json", ".xml",
    ".gz", ".zip", ".cml", ".mrv", ".log", ".out",
)

_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9'*_+-]{0,3}$")

LigandSpec = Union[str, os.PathLike, "Chem.Mol", "Ligand"]


def _base36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _generate_atom_names(mol: "Chem.Mol") -> List[str]:
    """Element symbol + running number per element (C1, C2, H1, ...), <= 4 characters."""
    counts: dict = {}
    names = []
    for atom in mol.GetAtoms():
        sym = atom.GetSymbol()
        counts[sym] = counts.get(sym, 0) + 1
        name = f"{sym}{counts[sym]}"
        if len(name) > 4:  # > 999 atoms of one element: fall back to base-36 numbering
            name = f"{sym[0]}{_base36(counts[sym])}"[:4]
        names.append(name)
    if len(set(names)) != len(names):  # pragma: no cover - only for absurdly large molecules
        names = [f"X{_base36(i)}"[:4] for i in range(len(names))]
    return names


def _names_from_input(mol: "Chem.Mol") -> Optional[List[str]]:
    """Atom names stored by RDKit's MOL2/PDB readers, if present, unique and PDB-safe."""
    names = []
    for atom in mol.GetAtoms():
        name = None
        if atom.HasProp("_TriposAtomName"):
            name = atom.GetProp("_TriposAtomName").strip()
        else:
            info = atom.GetPDBResidueInfo()
            if info is not None:
                name = info.GetName().strip()
        if not name or not _VALID_NAME.match(name):
            return None
        names.append(name)
    if len(set(names)) != len(names):
        return None
    return names


class Ligand:
    """A small molecule ready for parametrisation and simulation.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Sanitised molecule with all hydrogens explicit and exactly one 3D
        conformer (coordinates in angstrom, as RDKit stores them).  A copy is
        kept.
    resname : str, optional
        Residue name used in topologies and force-field templates (default "LIG").
    name : str, optional
        Human-readable name used in messages (default: canonical SMILES).
    atom_names : sequence of str, optional
        Unique atom names (<= 4 characters).  Generated as element + running
        number (C1, C2, ..., H1, ...) when not given.

    Attributes
    ----------
    mol : rdkit.Chem.Mol
        The molecule (explicit H, one conformer).
    resname : str
    name : str
    net_charge : int
        Sum of the formal charges, in elementary charges (e).
    atom_names : list of str
    source : str or None
        Where the molecule came from (file path, "SMILES", "RDKit Mol"), for messages.
    """

    def __init__(self, mol: "Chem.Mol", resname: str = "LIG", name: Optional[str] = None,
                 atom_names: Optional[Sequence[str]] = None, source: Optional[str] = None):
        mol = Chem.Mol(mol)
        if mol.GetNumConformers() < 1:
            raise LigandError(f"ligand {name or ''!r} has no conformer (3D coordinates)")
        if mol.GetNumConformers() > 1:
            keep = Chem.Conformer(mol.GetConformer())
            mol.RemoveAllConformers()
            mol.AddConformer(keep, assignId=True)
        self.mol = mol
        resname = str(resname).strip()
        if not resname or len(resname) > 4 or not re.match(r"^[A-Za-z0-9]+$", resname):
            raise LigandError(f"invalid ligand residue name {resname!r}: use 1-4 letters/digits (e.g. LIG)")
        self.resname = resname
        self.net_charge = int(sum(a.GetFormalCharge() for a in mol.GetAtoms()))
        if atom_names is None:
            atom_names = _names_from_input(mol) or _generate_atom_names(mol)
        atom_names = [str(n) for n in atom_names]
        if len(atom_names) != mol.GetNumAtoms():
            raise LigandError(f"ligand {name!r}: {len(atom_names)} atom names for {mol.GetNumAtoms()} atoms")
        if len(set(atom_names)) != len(atom_names) or not all(_VALID_NAME.match(n) for n in atom_names):
            raise LigandError(f"ligand {name!r}: atom names must be unique, 1-4 characters, letters/digits")
        self.atom_names = atom_names
        self.source = source
        self.name = name or self.canonical_smiles

    # ------------------------------------------------------------------ identity
    @property
    def canonical_smiles(self) -> str:
        """Canonical isomeric SMILES with explicit hydrogens removed (str)."""
        return Chem.MolToSmiles(Chem.RemoveHs(self.mol), isomericSmiles=True)

    @property
    def identity_key(self) -> str:
        """Stable key identifying the molecule for caching: ``"<canonical SMILES>|charge=<net charge>"``."""
        return f"{self.canonical_smiles}|charge={self.net_charge}"

    @property
    def n_atoms(self) -> int:
        """Number of atoms, hydrogens included."""
        return self.mol.GetNumAtoms()

    @property
    def elements(self) -> List[str]:
        """Element symbols in atom order."""
        return [a.GetSymbol() for a in self.mol.GetAtoms()]

    @property
    def positions_angstrom(self) -> np.ndarray:
        """Coordinates, shape (n_atoms, 3), in angstrom."""
        return np.array(self.mol.GetConformer().GetPositions(), dtype=float)

    def __repr__(self) -> str:
        return (f"Ligand(name={self.name!r}, resname={self.resname!r}, atoms={self.n_atoms}, "
                f"net_charge={self.net_charge})")

    # ------------------------------------------------------------------ OpenMM
    def to_openmm(self):
        """OpenMM topology and positions of the ligand.

        Returns
        -------
        topology : openmm.app.Topology
            One chain with one residue named :attr:`resname`, holding the atoms
            (names from :attr:`atom_names`, elements) and bonds (with bond type
            and order).
        positions : openmm.unit.Quantity
            Coordinates, shape (n_atoms, 3), in nanometers.
        """
        from openmm import unit, Vec3
        from openmm.app import Topology, element as elem
        from openmm.app.topology import Single, Double, Triple, Aromatic

        top = Topology()
        chain = top.addChain()
        residue = top.addResidue(self.resname, chain)
        atoms = []
        for atom, name in zip(self.mol.GetAtoms(), self.atom_names):
            atoms.append(top.addAtom(name, elem.Element.getByAtomicNumber(atom.GetAtomicNum()), residue))
        kinds = {Chem.BondType.SINGLE: (Single, 1), Chem.BondType.DOUBLE: (Double, 2),
                 Chem.BondType.TRIPLE: (Triple, 3), Chem.BondType.AROMATIC: (Aromatic, None)}
        for bond in self.mol.GetBonds():
            btype, order = kinds.get(bond.GetBondType(), (None, None))
            top.addBond(atoms[bond.GetBeginAtomIdx()], atoms[bond.GetEndAtomIdx()], type=btype, order=order)
        xyz = self.positions_angstrom * 0.1
        positions = unit.Quantity([Vec3(*map(float, p)) for p in xyz], unit.nanometer)
        return top, positions

    def write_sdf(self, path: Union[str, os.PathLike]) -> None:
        """Write the ligand (explicit H, 3D coordinates in angstrom) to an SDF file."""
        mol = Chem.Mol(self.mol)
        mol.SetProp("_Name", self.name)
        with Chem.SDWriter(str(path)) as writer:
            writer.write(mol)


# ---------------------------------------------------------------------- loading
def parse_smiles(text: str) -> Optional["Chem.Mol"]:
    """The molecule of a SMILES string (RDKit's messages silenced), or None if it cannot be parsed."""
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(text)
    finally:
        RDLogger.EnableLog("rdApp.*")
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None


def _looks_like_file(spec: str) -> bool:
    return Path(spec).suffix.lower() in _FILE_LIKE_EXTENSIONS or spec.endswith(("/", os.sep))


def _check_fragments(mol: "Chem.Mol", label: str) -> None:
    frags = Chem.GetMolFrags(mol)
    if len(frags) > 1:
        sizes = ", ".join(str(len(f)) for f in frags)
        raise LigandError(
            f"ligand {label} consists of {len(frags)} disconnected fragments (atom counts {sizes}): "
            "give one connected molecule per ligand (remove counter-ions/salts or split the file)")


def _check_mol(mol: "Chem.Mol", label: str) -> None:
    """Checks common to every input: hydrogens explicit, closed shell, one fragment, 3D."""
    no_h = [i for i, a in enumerate(mol.GetAtoms()) if a.GetNumImplicitHs() > 0]
    radicals = [i for i, a in enumerate(mol.GetAtoms()) if a.GetNumRadicalElectrons() > 0]
    names = _names_from_input(mol) or _generate_atom_names(mol)

    def listing(idx):
        shown = ", ".join(names[i] for i in idx[:8])
        return shown + (f", ... ({len(idx)} atoms)" if len(idx) > 8 else "")

    if no_h:
        raise LigandError(
            f"ligand {label} has no explicit hydrogens on atoms {listing(no_h)}: add hydrogens "
            "(e.g. with RDKit/OpenBabel) and 3D coordinates, and save it again (SDF or MOL2)")
    if radicals:
        raise LigandError(
            f"ligand {label} has unpaired electrons (radical) on atoms {listing(radicals)}: if hydrogens "
            "are missing, add hydrogens (e.g. with RDKit/OpenBabel) and 3D coordinates; radicals cannot "
            "be parametrised with GAFF2/AM1-BCC")
    _check_fragments(mol, label)
    if mol.GetNumConformers() == 0:
        raise LigandError(f"ligand {label} has no coordinates: provide a 3D structure")
    conf = mol.GetConformer()
    xyz = np.array(conf.GetPositions())
    if mol.GetNumAtoms() > 1 and (not conf.Is3D() or np.all(np.abs(xyz[:, 2]) < 1e-6)):
        raise LigandError(
            f"ligand {label} has no 3D coordinates (2D structure: all z = 0 or 2D flag): "
            "generate a 3D conformer (e.g. RDKit EmbedMolecule, OpenBabel --gen3d) and save it again")


@dataclass
class LigandRecord:
    """One molecule record of a ligand file.

    Attributes
    ----------
    index : int
        Position in the file, from 0.
    name : str
        The record's title (first line of an SDF record, the line after ``@<TRIPOS>MOLECULE`` in
        MOL2); ``"<file stem>-<index>"`` when the title is empty.
    mol : rdkit.Chem.Mol or None
        The molecule (hydrogens kept, sanitised), or None when RDKit cannot read it.
    error : str or None
        Why the record cannot be read (None when ``mol`` is set).
    """

    index: int
    name: str
    mol: Optional["Chem.Mol"]
    error: Optional[str] = None


def _split_records(text: str, ext: str) -> List[Tuple[str, str]]:
    """(title, block) of every molecule record in an SDF or MOL2 text."""
    if ext == ".mol2":
        starts = [m.start() for m in re.finditer(r"^\s*@<TRIPOS>MOLECULE", text, flags=re.M)]
        blocks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
        return [((block.splitlines()[1] if len(block.splitlines()) > 1 else "").strip(), block) for block in blocks]
    blocks = [block for block in re.split(r"^\$\$\$\$[^\n]*\n?", text, flags=re.M) if block.strip()]
    return [(block.splitlines()[0].strip() if block.splitlines() else "", block) for block in blocks]


def _parse_record(block: str, ext: str) -> Tuple[Optional["Chem.Mol"], Optional[str]]:
    RDLogger.DisableLog("rdApp.*")
    try:
        if ext == ".mol2":
            mol = Chem.MolFromMol2Block(block, removeHs=False, sanitize=True)
            hint = "check SYBYL atom types, charges and bond orders, or use SDF"
        else:
            mol = Chem.MolFromMolBlock(block, removeHs=False, sanitize=True)
            hint = "check atom valences, charges and bond orders"
    except Exception as exc:  # RDKit raises on some malformed blocks instead of returning None
        return None, f"RDKit cannot read the record ({exc})"
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        return None, f"RDKit cannot read or sanitise the molecule ({hint})"
    if mol.GetNumAtoms() == 0:
        return None, "the record holds no atoms"
    return mol, None


def read_ligand_records(path) -> List[LigandRecord]:
    """Every molecule record of an SDF/MOL2 file, readable or not (a series file).

    Parameters
    ----------
    path : str or Path
        ``.sdf``/``.sd``/``.mol``/``.mol2`` file.

    Returns
    -------
    list of LigandRecord
        In file order; a record RDKit cannot read has ``mol=None`` and ``error`` saying why.

    Raises
    ------
    InputFileError
        Missing or unreadable file, unsupported extension.
    LigandError
        The file holds no molecule record at all.
    """
    path = Path(path)
    label = f"'{path}'"
    ext = path.suffix.lower()
    if not path.exists():
        raise InputFileError(f"ligand file {label} not found")
    if path.is_dir():
        raise InputFileError(f"ligand file {label} is a directory")
    if ext not in SUPPORTED_EXTENSIONS:
        hint = " (PDB files carry no bond orders)" if ext in (".pdb", ".ent", ".pdbqt", ".cif") else ""
        raise InputFileError(
            f"unsupported ligand file extension '{ext}' for {label}{hint}: use "
            f"{', '.join(SUPPORTED_EXTENSIONS)} with explicit hydrogens and 3D coordinates, or a SMILES string")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read ligand file {label}: {exc}") from exc
    if not text.strip():
        raise LigandError(f"ligand file {label} contains no molecule (the file is empty)")
    ext = ".mol2" if ext == ".mol2" else ".sdf"
    records = []
    for index, (title, block) in enumerate(_split_records(text, ext)):
        mol, error = _parse_record(block, ext)
        name = title if title and set(title) != {"*"} else f"{path.stem}-{index}"
        records.append(LigandRecord(index, name, mol, error))
    if not records:
        what = "no @<TRIPOS>MOLECULE record" if ext == ".mol2" else "no molecule record"
        raise LigandError(f"ligand file {label} contains no molecule ({what})")
    return records


def _listing(records: Sequence[LigandRecord]) -> str:
    shown = ", ".join(f"{r.index}: {r.name}" for r in records[:30])
    return shown + (f", ... ({len(records)} records)" if len(records) > 30 else "")


def select_record(records: Sequence[LigandRecord], label: str, name: Optional[str] = None,
                  index: Optional[int] = None) -> LigandRecord:
    """The record chosen by ``name`` (its title) or ``index`` (from 0); the only one if neither.

    Raises
    ------
    LigandError
        Several records and no choice, an unknown name or index, a name several records share,
        or a chosen record RDKit cannot read; the message lists the records present.
    """
    if name is not None and index is not None:
        raise LigandError(f"ligand file {label}: give the ligand's name or its index, not both")
    if name is None and index is None:
        if len(records) > 1:
            raise LigandError(
                f"ligand file {label} contains {len(records)} molecules ({_listing(records)}); which one to "
                "use is ambiguous: choose one with --ligand-name NAME (ligand_name=) or --ligand-index K "
                "(ligand_index=, from 0), or build them all with --ligands FILE (build_series)")
        chosen = records[0]
    elif name is not None:
        matches = [r for r in records if r.name == str(name).strip()]
        if not matches:
            raise LigandError(f"ligand file {label} has no molecule named {name!r}; the molecules are: "
                              f"{_listing(records)}")
        if len(matches) > 1:
            raise LigandError(f"ligand file {label} has {len(matches)} molecules named {name!r} (indices "
                              f"{', '.join(str(r.index) for r in matches)}): choose one with --ligand-index K")
        chosen = matches[0]
    else:
        if not 0 <= int(index) < len(records):
            raise LigandError(f"ligand file {label} has {len(records)} molecules (indices 0 to {len(records) - 1}), "
                              f"so there is no index {index}; the molecules are: {_listing(records)}")
        chosen = records[int(index)]
    if chosen.mol is None:
        raise LigandError(f"could not parse molecule {chosen.index} ({chosen.name!r}) of ligand file {label}: "
                          f"{chosen.error}")
    return chosen


def _mol_name(mol: "Chem.Mol", fallback: str) -> str:
    name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
    if not name or set(name) <= {"*"}:
        return fallback
    return name


def _embed(mol: "Chem.Mol", label: str, seed: int) -> "Chem.Mol":
    """Add hydrogens, embed one 3D conformer with ETKDG (fixed seed), MMFF-optimise."""
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) < 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) < 0:
            raise LigandError(f"could not generate 3D coordinates for ligand {label} (ETKDG embedding failed)")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    return mol


def ligand_from_record(record: LigandRecord, path, resname: str = "LIG", single: bool = False) -> Ligand:
    """The :class:`Ligand` of one record of ``path`` (checked like any ligand file); ``single``: the
    file holds only this record (messages then name the file alone)."""
    label = f"'{path}'" if single else f"{record.name!r} (molecule {record.index} of '{path}')"
    if record.mol is None:
        raise LigandError(f"could not parse ligand {label}: {record.error}")
    mol = Chem.Mol(record.mol)
    _check_mol(mol, label)
    Chem.AssignStereochemistryFrom3D(mol)
    return Ligand(mol, resname=resname, name=record.name, source=str(path))


def load_ligand(spec: LigandSpec, resname: str = "LIG", seed: int = 0, name: Optional[str] = None,
                index: Optional[int] = None) -> Ligand:
    """Load a ligand from a file, an RDKit molecule or a SMILES string.

    Parameters
    ----------
    spec : str, os.PathLike, rdkit.Chem.Mol or Ligand
        * path to a ``.sdf``/``.sd``/``.mol``/``.mol2`` file with explicit hydrogens and 3D
          coordinates (angstrom); a file of several molecules (a series) needs ``name`` or
          ``index``;
        * an RDKit molecule (used as is if it has a 3D conformer, which then
          needs explicit hydrogens; otherwise hydrogens are added and a
          conformer is embedded);
        * a SMILES string (recognised when it is not an existing path and has
          no file-like extension): hydrogens are added, a conformer is
          embedded with ETKDG and MMFF94-optimised;
        * a :class:`Ligand` (returned with ``resname`` applied).
    resname : str, optional
        Residue name for the ligand (1-4 letters/digits, default "LIG").
    seed : int, optional
        Random seed of the ETKDG embedding (SMILES / conformer-less Mol input).
    name, index : str or int, optional
        Which molecule of a multi-molecule file: its title, or its position (from 0).

    Returns
    -------
    Ligand

    Raises
    ------
    InputFileError
        Missing/unreadable file or unsupported extension.
    LigandError
        Unparsable file or SMILES, no molecule, several molecules and no ``name``/``index`` (the
        message lists them), missing hydrogens or radicals, no 3D coordinates, disconnected
        fragments.
    """
    if (name is not None or index is not None) and not isinstance(spec, (str, os.PathLike)):
        raise LigandError("ligand_name and ligand_index choose a molecule of a ligand file; "
                          f"the ligand was given as {type(spec).__name__}")
    if isinstance(spec, Ligand):
        if resname == spec.resname:
            return spec
        return Ligand(spec.mol, resname=resname, name=spec.name, atom_names=spec.atom_names, source=spec.source)

    if isinstance(spec, Chem.Mol):
        mol = Chem.Mol(spec)
        label = f"'{_mol_name(mol, 'RDKit Mol')}'"
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:
            raise LigandError(f"RDKit molecule {label} cannot be sanitised: {exc}") from exc
        has_3d = mol.GetNumConformers() > 0 and (
            mol.GetConformer().Is3D() and not np.all(np.abs(mol.GetConformer().GetPositions()[:, 2]) < 1e-6))
        if not has_3d:
            mol.RemoveAllConformers()
            mol = _embed(mol, label, seed)
        _check_mol(mol, label)
        name = _mol_name(mol, Chem.MolToSmiles(Chem.RemoveHs(mol)))
        Chem.AssignStereochemistryFrom3D(mol)
        return Ligand(mol, resname=resname, name=name, source="RDKit Mol")

    if isinstance(spec, os.PathLike):
        path = Path(spec)
        records = read_ligand_records(path)
        record = select_record(records, f"'{path}'", name=name, index=index)
        if len(records) == 1 and record.name == f"{path.stem}-0":
            record = LigandRecord(0, path.stem, record.mol)
        return ligand_from_record(record, path, resname, single=len(records) == 1)

    if not isinstance(spec, str):
        raise LigandError(f"cannot make a ligand from {type(spec).__name__}: give a file path, SMILES or RDKit Mol")

    text = spec.strip()
    if not text:
        raise LigandError("empty ligand specification: give a file path or a SMILES string")
    if os.path.exists(text) or _looks_like_file(text):
        return load_ligand(Path(text), resname=resname, seed=seed, name=name, index=index)
    if name is not None or index is not None:
        raise LigandError(f"ligand_name/ligand_index choose a molecule of a ligand file, but {text!r} is not a file")

    mol = parse_smiles(text)
    if mol is None:
        raise LigandError(
            f"could not parse {text!r} as a SMILES string (and no file of that name exists): "
            "check the SMILES, or give a .sdf/.mol/.mol2 file")
    label = f"'{text}'"
    _check_fragments(mol, label)
    mol = _embed(mol, label, seed)
    _check_mol(mol, label)
    # Stereo tags follow the embedded 3D structure (fixes unspecified centres),
    # so the identity key describes the molecule actually simulated.
    Chem.AssignStereochemistryFrom3D(mol)
    return Ligand(mol, resname=resname, name=text, source="SMILES")
