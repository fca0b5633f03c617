"""The ligand series and the value tables of a campaign, and the build of one ligand's systems.

- :func:`read_series`: ligands from a multi-molecule SDF (names from the record titles) or a
  SMILES file (``SMILES [name]`` per line).  A record that cannot be used becomes an entry with
  its error, so the campaign reports it and goes on with the others.
- :func:`read_value_table`: ``name,dG[,dG_err]`` (kcal/mol) CSV files: MM binding free energies
  from any MM tool, or experimental values.
- :func:`build_ligand_phases`: one ligand's MM Systems (complex and ligand alone, or water and
  vacuum), each folder complete or absent.  This is the campaign's series build, one ligand per
  unit of work; ``openmm_hybrid.mm.build_series`` (the series-input work) is meant to replace it.
"""
import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from rdkit import Chem

from ...errors import CampaignError, HybridError
from ...mm.builder import build_system
from ...mm.ligand import Ligand, load_ligand
from .settings import CampaignSettings
from .store import first_folder

SDF_SUFFIXES = (".sdf", ".sd")
SMILES_SUFFIXES = (".smi", ".smiles")
UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


@dataclass
class SeriesEntry:
    """One record of a series: its name, the ligand (or why it cannot be used) and its position."""

    name: str
    index: int
    ligand: Optional[Ligand] = None
    error: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.ligand is not None

    @property
    def molblock(self) -> str:
        """The ligand as MDL text: how it travels to the workers (RDKit's pickles keep coordinates
        in single precision, so a pickled molecule would not build the same System)."""
        return Chem.MolToMolBlock(self.ligand.mol)


def ligand_from_molblock(molblock: str) -> Ligand:
    """The ligand of :attr:`SeriesEntry.molblock` (the same atoms, coordinates and name)."""
    return load_ligand(Chem.MolFromMolBlock(molblock, removeHs=False), resname="LIG")


def folder_name(title: str, index: int) -> str:
    """A record title as a file-system name (other characters become ``_``); ``ligand-N`` if empty."""
    name = UNSAFE.sub("_", title.strip())
    return name.lstrip(".") or f"ligand-{index + 1}"


def read_series(path) -> List[SeriesEntry]:
    """The ligands of a series file.

    Parameters
    ----------
    path : str or Path
        ``.sdf``/``.sd`` (several records, explicit hydrogens and 3D coordinates, names from
        the record titles) or ``.smi``/``.smiles`` (``SMILES [name]`` per line, ``#`` comments;
        conformers are generated).

    Raises
    ------
    CampaignError
        Missing file, unsupported format, no records, two records with one name.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"series file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix in SDF_SUFFIXES:
        raw = _sdf_records(path)
    elif suffix in SMILES_SUFFIXES:
        raw = _smiles_records(path)
    else:
        raise CampaignError(f"series file '{path}' has unsupported format '{suffix}': use a multi-molecule SDF "
                            f"(.sdf) or a SMILES file (.smi, one 'SMILES name' per line)")
    if not raw:
        raise CampaignError(f"series file '{path}' holds no molecules")
    entries = []
    for index, (title, spec, error) in enumerate(raw):
        entry = SeriesEntry(folder_name(title, index), index, error=error)
        if error is None:
            try:
                # through MDL text, as the workers get it: every process builds from the same numbers
                entry.ligand = load_ligand(spec, resname="LIG")
                entry.ligand = ligand_from_molblock(entry.molblock)
            except HybridError as exc:
                entry.error = str(exc)
        entries.append(entry)
    seen: Dict[str, int] = {}
    for entry in entries:
        if entry.name in seen:
            raise CampaignError(f"series file '{path}': records {seen[entry.name] + 1} and {entry.index + 1} are both "
                                f"named '{entry.name}'; every ligand needs its own name (its results folder)")
        seen[entry.name] = entry.index
    return entries


def _sdf_records(path: Path):
    records = []
    for index, mol in enumerate(Chem.SDMolSupplier(str(path), removeHs=False)):
        if mol is None:
            records.append((f"record-{index + 1}", None, f"record {index + 1} of '{path}' cannot be read by RDKit"))
        else:
            records.append((mol.GetProp("_Name") if mol.HasProp("_Name") else "", mol, None))
    return records


def _smiles_records(path: Path):
    records = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            smiles, _, title = line.partition(" ")
            records.append((title.strip(), smiles, None))
    return records


def read_value_table(path, what: str) -> Dict[str, dict]:
    """``{name: {"dG": kcal/mol, "dG_err": kcal/mol}}`` from a CSV with a ``name,dG[,dG_err]`` header.

    Parameters
    ----------
    path : str or Path
    what : str
        What the values are (``"MM binding free energies"``), for messages.

    Raises
    ------
    CampaignError
        Missing file, no ``name`` and ``dG`` columns, a value that is not a number, a name twice.
    """
    path = Path(path)
    if not path.is_file():
        raise CampaignError(f"{what} file '{path}' does not exist")
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines, skipinitialspace=True)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "name" not in columns or "dG" not in columns:
        raise CampaignError(f"{what} file '{path}' needs a header line with the columns name,dG[,dG_err] (kcal/mol); "
                            f"found: {','.join(columns) or 'nothing'}")
    values: Dict[str, dict] = {}
    for number, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        name = folder_name(row["name"], number)
        entry = {}
        for column in ("dG", "dG_err"):
            text = row.get(column, "")
            if column == "dG_err" and text == "":
                entry[column] = 0.0
                continue
            try:
                entry[column] = float(text)
            except ValueError:
                raise CampaignError(f"{what} file '{path}', data line {number - 1} ({row['name']}): {column} "
                                    f"{text!r} is not a number (kcal/mol)") from None
            if not math.isfinite(entry[column]):
                raise CampaignError(f"{what} file '{path}', data line {number - 1} ({row['name']}): {column} is "
                                    f"not finite")
        if name in values:
            raise CampaignError(f"{what} file '{path}' gives ligand '{row['name']}' twice")
        values[name] = entry
    return values


def phase_build_options(settings: CampaignSettings, hydration: bool, protein=None) -> Dict[str, dict]:
    """``build_system`` keyword arguments of each phase: ``complex`` and ``solvent`` (binding),
    ``solvent`` and ``vacuum`` (hydration)."""
    b = settings.build
    common = dict(ligand_ff=b.ligand_ff, hydrogen_mass=b.hydrogen_mass_amu)
    water = dict(padding=b.padding_nm, nonbonded_cutoff=b.nonbonded_cutoff_nm, water_model=b.water_model,
                 box_shape=b.box_shape)
    if hydration:
        return {"solvent": dict(common, solvent="explicit", ionic_strength=0.0, **water),
                "vacuum": dict(common, solvent="vacuum")}
    phase = dict(common, solvent=b.solvent, ionic_strength=b.ionic_strength_molar, **water)
    return {"complex": dict(phase, protein=None if protein is None else str(protein), ph=b.ph),
            "solvent": dict(phase)}


def build_ligand_phases(molblock: str, options: Dict[str, dict], folders: Dict[str, str]) -> Dict[str, dict]:
    """Build (once) each phase of one ligand into its folder (complete or absent).

    Parameters
    ----------
    molblock : str
        The ligand (:attr:`SeriesEntry.molblock`).
    options : dict
        ``build_system`` keyword arguments per phase (:func:`phase_build_options`).
    folders : dict
        Output folder per phase; a folder that already holds ``build.json`` is kept.

    Returns
    -------
    dict
        Per phase: ``folder``, ``n_atoms`` and ``net_charge`` (the series summary's entry).
    """
    ligand = ligand_from_molblock(molblock)
    summary = {}
    for phase, kwargs in options.items():
        folder = Path(folders[phase])
        if not (folder / "build.json").is_file():
            with first_folder(folder) as work:
                build_system(ligand=ligand, **kwargs).save(work)
        info = json.loads((folder / "build.json").read_text())
        summary[phase] = {"folder": str(folder), "n_atoms": info["atom_counts"]["total"],
                          "net_charge": info["ligand"]["net_charge"]}
    return summary
