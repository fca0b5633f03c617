"""Raw crystal structures made complete with PDBFixer, and a record of what changed.

:func:`prepare_structure` reads a PDB or mmCIF file and

- keeps one alternate location per residue, the one with the highest mean occupancy (OpenMM's
  readers would keep the first one listed);
- adds missing residues inside chains (gaps in the SEQRES / entity sequence); missing residues
  at chain ends are left out unless ``add_missing_termini`` (their positions are a guess);
- replaces nonstandard residues PDBFixer knows (selenomethionine, cacodylated cysteine, ...)
  by their standard residue, except those the force field has a template for (a
  phosphothreonine given with ``--forcefield`` stays);
- adds missing heavy atoms (PDBFixer builds them and relaxes them in a soft force field).

Hydrogens are not added here: the builder adds them (:mod:`openmm_hybrid.mm.protonation`), so
that residues without a PDBFixer template (cofactors, modified residues) get them too.  What
changed is returned as a JSON-able report (``prep.json`` in a build folder).
"""
from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

from openmm.app.internal.pdbx.reader.PdbxReader import PdbxReader
from openmm.app.internal.pdbx.writer.PdbxWriter import PdbxWriter
from pdbfixer import PDBFixer

from ..errors import InputFileError, StructureError
from .residue_labels import residue_label

__all__ = ["PreparedStructure", "prepare_structure", "select_alternate_locations", "PDB_SUFFIXES", "PDBX_SUFFIXES"]

PDB_SUFFIXES = (".pdb", ".ent")
PDBX_SUFFIXES = (".cif", ".mmcif", ".pdbx")


@dataclass
class PreparedStructure:
    """A structure after PDBFixer: topology, positions (nm) and what was changed (``report``)."""

    topology: object
    positions: object
    report: Dict[str, list] = field(default_factory=dict)
    modelled_residues: Set[Tuple[str, str, str]] = field(default_factory=set)
    """``(chain id, residue id, residue name)`` of the residues PDBFixer added or completed: their
    coordinates are PDBFixer's guess, for minimisation to refine."""


def _best_altloc(occupancies: Dict[str, List[float]]) -> str:
    """The alternate location with the highest mean occupancy (the first in alphabetical order on ties)."""
    return max(sorted(occupancies), key=lambda loc: sum(occupancies[loc]) / len(occupancies[loc]))


def _choices(groups) -> List[dict]:
    report = []
    for (chain, number, name), occupancies in groups.items():
        if len(occupancies) < 2:
            continue
        best = _best_altloc(occupancies)
        report.append({"residue": f"{name} {number} (chain {chain})", "kept": best,
                       "occupancy": round(sum(occupancies[best]) / len(occupancies[best]), 3),
                       "dropped": {loc: round(sum(v) / len(v), 3) for loc, v in sorted(occupancies.items())
                                   if loc != best}})
    return report


def _select_pdb(text: str) -> Tuple[str, List[dict]]:
    groups: Dict[tuple, Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))
    records = [line for line in text.splitlines() if line.startswith(("ATOM  ", "HETATM"))]
    for line in records:
        loc = line[16:17]
        if loc.strip():
            try:
                occupancy = float(line[54:60])
            except ValueError:
                occupancy = 1.0
            groups[(line[21:22].strip(), (line[22:26] + line[26:27]).strip(), line[17:20].strip())][loc].append(occupancy)
    best = {key[:2]: _best_altloc(occ) for key, occ in groups.items()}
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("ATOM  ", "HETATM", "ANISOU")) and line[16:17].strip():
            key = (line[21:22].strip(), (line[22:26] + line[26:27]).strip())
            if line[16:17] != best.get(key):
                continue
            line = line[:16] + " " + line[17:]
        out.append(line)
    return "".join(out), _choices(groups)


def _select_pdbx(text: str) -> Tuple[str, List[dict]]:
    containers: list = []
    PdbxReader(io.StringIO(text)).read(containers)
    if not containers or containers[0].getObj("atom_site") is None:
        return text, []
    atoms = containers[0].getObj("atom_site")

    def column(*names):
        for name in names:
            index = atoms.getAttributeIndex(name)
            if index != -1:
                return index
        return -1

    alt, occ = column("label_alt_id"), column("occupancy")
    chain, number = column("auth_asym_id", "label_asym_id"), column("auth_seq_id", "label_seq_id")
    icode, name = column("pdbx_PDB_ins_code"), column("auth_comp_id", "label_comp_id")
    if alt == -1:
        return text, []
    rows = atoms.getRowList()

    def key(row):
        insertion = row[icode] if icode != -1 and row[icode] not in ("?", ".") else ""
        return row[chain], row[number] + insertion

    groups: Dict[tuple, Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row[alt] not in (".", "?"):
            try:
                occupancy = float(row[occ]) if occ != -1 else 1.0
            except ValueError:
                occupancy = 1.0
            groups[key(row) + (row[name],)][row[alt]].append(occupancy)
    best = {k[:2]: _best_altloc(v) for k, v in groups.items()}
    kept = []
    for row in rows:
        if row[alt] not in (".", "?"):
            if row[alt] != best.get(key(row)):
                continue
            row[alt] = "."
        kept.append(row)
    rows[:] = kept
    out = io.StringIO()
    PdbxWriter(out).write(containers)
    return out.getvalue(), _choices(groups)


def select_alternate_locations(path) -> Tuple[str, List[dict]]:
    """The text of a PDB/mmCIF file with one alternate location per residue, and the choices made.

    Returns
    -------
    text : str
        The file's text with the other locations removed (and the kept one's label cleared).
    choices : list of dict
        Per residue with several locations: ``residue``, ``kept`` (label), ``occupancy`` (its mean
        occupancy) and ``dropped`` (label -> mean occupancy).
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in PDBX_SUFFIXES:
        return _select_pdbx(text)
    return _select_pdb(text)


def prepare_structure(path, keep_residues: Iterable[str] = (), add_missing_termini: bool = False,
                      seed: int = 0) -> PreparedStructure:
    """Repair a raw PDB or mmCIF structure with PDBFixer (see the module docstring).

    Parameters
    ----------
    path : str or Path
        ``.pdb``/``.ent`` or ``.cif``/``.mmcif``/``.pdbx`` file.
    keep_residues : iterable of str
        Residue names not to replace by a standard residue (the force field has templates for them).
    add_missing_termini : bool
        Also add missing residues at chain ends.
    seed : int
        Random seed of PDBFixer's relaxation of the added atoms.

    Returns
    -------
    PreparedStructure
        ``report`` keys: ``alternate_locations``, ``missing_residues_added``,
        ``missing_termini_left_out``, ``nonstandard_replaced``, ``nonstandard_kept``,
        ``missing_atoms_added``, ``missing_terminal_atoms_added``.

    Raises
    ------
    InputFileError
        Missing file or unsupported format.
    StructureError
        PDBFixer cannot read or repair the structure (its message included).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"protein file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix not in PDB_SUFFIXES + PDBX_SUFFIXES:
        raise InputFileError(f"protein file '{path}' has unsupported format '{suffix}': use PDB (.pdb) or mmCIF (.cif)")
    text, altlocs = select_alternate_locations(path)
    try:
        fixer = PDBFixer(pdbxfile=io.StringIO(text)) if suffix in PDBX_SUFFIXES else PDBFixer(pdbfile=io.StringIO(text))
    except Exception as exc:
        raise StructureError(f"PDBFixer cannot read '{path}': {exc}") from exc
    keep = set(keep_residues)
    report: Dict[str, list] = {"alternate_locations": altlocs}
    try:
        fixer.findMissingResidues()
        chains = list(fixer.topology.chains())
        added, left_out = [], []
        for (chain_index, position), names in sorted(fixer.missingResidues.items()):
            residues = list(chains[chain_index].residues())
            terminal = position == 0 or position == len(residues)
            where = (f"before {residue_label(residues[0])}" if position == 0 else
                     f"after {residue_label(residues[position - 1])}")
            entry = {"chain": chains[chain_index].id, "where": where, "residues": list(names)}
            if terminal and not add_missing_termini:
                del fixer.missingResidues[(chain_index, position)]
                left_out.append(entry)
            else:
                added.append(entry)
        report["missing_residues_added"], report["missing_termini_left_out"] = added, left_out
        fixer.findNonstandardResidues()
        report["nonstandard_kept"] = [residue_label(r) for r, _ in fixer.nonstandardResidues if r.name in keep]
        fixer.nonstandardResidues = [(r, new) for r, new in fixer.nonstandardResidues if r.name not in keep]
        report["nonstandard_replaced"] = [{"residue": residue_label(r), "by": new} for r, new in fixer.nonstandardResidues]
        fixer.replaceNonstandardResidues()
        fixer.findMissingAtoms()
        report["missing_atoms_added"] = [{"residue": residue_label(r), "atoms": [a.name for a in atoms]}
                                         for r, atoms in fixer.missingAtoms.items()]
        report["missing_terminal_atoms_added"] = [{"residue": residue_label(r), "atoms": list(names)}
                                                  for r, names in fixer.missingTerminals.items()]
        # replacing nonstandard residues made a new topology (same chains and positions): index that one
        chain_of = {r: c for c, chain in enumerate(fixer.topology.chains()) for r in chain.residues()}
        index_of = {r: k for chain in fixer.topology.chains() for k, r in enumerate(chain.residues())}
        completed = [(chain_of[r], index_of[r]) for r in list(fixer.missingAtoms) + list(fixer.missingTerminals)]
        inserted = sorted((c, p, len(names)) for (c, p), names in fixer.missingResidues.items())
        fixer.addMissingAtoms(seed=seed)
    except Exception as exc:
        raise StructureError(f"PDBFixer cannot repair '{path}': {type(exc).__name__}: {exc}; repair the structure "
                             "by hand (or with another tool) and build it without --prepare") from exc
    return PreparedStructure(fixer.topology, fixer.positions, report,
                             _modelled_residues(fixer.topology, inserted, completed))


def _modelled_residues(topology, inserted, completed) -> Set[Tuple[str, str, str]]:
    """Keys of the residues PDBFixer inserted (``(chain index, position, count)`` in the chains as they
    were) or completed (``(chain index, residue index)``), located in its new topology."""
    chains = [list(chain.residues()) for chain in topology.chains()]

    def new_index(chain: int, old: int) -> int:  # inserted residues shift the ones after them
        return old + sum(count for c, position, count in inserted if c == chain and position <= old)

    residues = [chains[c][new_index(c, p) - count + k] for c, p, count in inserted for k in range(count)]
    residues += [chains[c][new_index(c, k)] for c, k in completed]
    return {(r.chain.id, r.id, r.name) for r in residues}


def summarize_preparation(report: Dict[str, list]) -> str:
    """One line saying what :func:`prepare_structure` changed."""
    parts = []
    if report.get("alternate_locations"):
        parts.append(f"{len(report['alternate_locations'])} residues with alternate locations (highest occupancy kept)")
    added = report.get("missing_residues_added") or []
    if added:
        parts.append(f"{sum(len(g['residues']) for g in added)} missing residues added in {len(added)} gaps")
    if report.get("missing_termini_left_out"):
        n = sum(len(g["residues"]) for g in report["missing_termini_left_out"])
        parts.append(f"{n} missing terminal residues left out (--add-missing-termini adds them)")
    if report.get("nonstandard_replaced"):
        parts.append("replaced " + ", ".join(f"{r['residue']} by {r['by']}" for r in report["nonstandard_replaced"]))
    if report.get("nonstandard_kept"):
        parts.append("kept (templates given) " + ", ".join(report["nonstandard_kept"]))
    atoms = report.get("missing_atoms_added") or []
    if atoms:
        parts.append(f"{sum(len(r['atoms']) for r in atoms)} missing heavy atoms added in {len(atoms)} residues")
    terminal = report.get("missing_terminal_atoms_added") or []
    if terminal:
        parts.append(f"{sum(len(r['atoms']) for r in terminal)} terminal atoms added")
    return "; ".join(parts) if parts else "nothing to repair"
