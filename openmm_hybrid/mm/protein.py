"""Protein files as they come: crystal waters and ions kept, cofactors parametrised, hydrogens added.

:func:`prepare_protein` turns a PDB/mmCIF file into a :class:`PreparedProtein`, the protein part of
a build that any ligand can then be added to (:func:`~openmm_hybrid.mm.builder.build_system`
prepares it once per call; :func:`~openmm_hybrid.mm.series.build_series` once per series):

1. with ``prepare``, PDBFixer repairs a raw structure (:mod:`.structure_preparation`);
2. crystal waters and ions are kept (``remove_waters`` drops the waters), ``remove_residues``
   drops residues by name;
3. a ligand given as a residue of the file (``ligand_resname`` + ``ligand_template``) and the
   cofactors (``cofactors``) are taken out of the structure and made whole molecules from
   their templates (:mod:`.complex_ligand`); cofactors get GAFF2 parameters like ligands and
   stay MM, and go back into the topology (as residues at the end) with their hydrogens;
4. any other residue without a force-field template is refused, naming it by chain and file
   number and the option that gives it a template (``--cofactor``, ``--forcefield``,
   ``--ligand-template``, ``--prepare`` for residues PDBFixer can replace);
5. hydrogens are added, keeping the protonation states the file gives
   (:mod:`.protonation`).

The force field is the protein's (``amber14-all.xml``), the water model's file (for the
crystal waters' and ions' templates, in every solvent mode) and the extra files
(``forcefield_files``: modified residues, metal sites).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import openmm.app as app
from pdbfixer.pdbfixer import substitutions as PDBFIXER_SUBSTITUTIONS

from .._util import progress
from ..errors import HybridError, InputFileError, StructureError
from .complex_ligand import load_template, molecule_from_residue, residues_named
from .forcefield import MMForceField
from .ligand import Ligand
from .parameters import LigandParameters, parametrize
from .protonation import add_hydrogens, summarize_protonation
from .residue_labels import residue_in_openmm_message, residue_label
from .structure_preparation import PDB_SUFFIXES, PDBX_SUFFIXES, prepare_structure, summarize_preparation

__all__ = ["PreparedProtein", "prepare_protein", "load_structure", "parse_cofactor", "WATER_XML"]

WATER_XML = {"tip3p": "amber14/tip3p.xml", "tip3pfb": "amber14/tip3pfb.xml", "spce": "amber14/spce.xml",
             "opc": "amber14/opc.xml"}
_RESNAME = re.compile(r"^[A-Za-z0-9]{1,4}$")


@dataclass
class PreparedProtein:
    """A protein ready to take a ligand.

    Attributes
    ----------
    topology : openmm.app.Topology
        Protein (hydrogens added), crystal waters, ions, and the cofactors (complete molecules,
        as residues at the end).
    positions : Quantity
        Positions in nm.
    source : str
        The structure file.
    forcefield_files : tuple of str
        Force-field files its residues need (protein; the water model's for crystal waters and
        ions; extra files).
    cofactors : list of Ligand
        One per cofactor residue (MM, GAFF2).
    cofactor_parameters : list of LigandParameters
        Parameters of the distinct cofactor molecules.
    ligand : Ligand or None
        The ligand taken out of the structure (``ligand_resname`` + ``ligand_template``).
    report : dict
        What was done: ``preparation`` (PDBFixer), ``protonation``, ``waters``, ``ions``,
        ``cofactors``, ``removed``, ``ligand_from_structure`` (JSON-able; ``prep.json``).
    modelled_residues : set of (chain id, residue id, residue name)
        Residues ``--prepare`` added or completed (coordinates guessed by PDBFixer).
    """

    topology: "app.Topology"
    positions: object
    source: str
    forcefield_files: Tuple[str, ...]
    cofactors: List[Ligand] = field(default_factory=list)
    cofactor_parameters: List[LigandParameters] = field(default_factory=list)
    ligand: Optional[Ligand] = None
    report: dict = field(default_factory=dict)
    modelled_residues: set = field(default_factory=set)

    def modeller(self) -> "app.Modeller":
        """A new ``Modeller`` holding a copy of the prepared topology and positions."""
        return app.Modeller(self.topology, self.positions)


def load_structure(path):
    """Topology and positions of a PDB or mmCIF file (as it is, no repair)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"protein file '{path}' does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in PDB_SUFFIXES:
            structure = app.PDBFile(str(path))
        elif suffix in PDBX_SUFFIXES:
            structure = app.PDBxFile(str(path))
        else:
            raise InputFileError(f"protein file '{path}' has unsupported format '{suffix}': use PDB (.pdb) or "
                                 "mmCIF (.cif)")
    except (ValueError, KeyError, IndexError) as exc:
        raise InputFileError(f"cannot read protein file '{path}': {exc}") from exc
    return structure.topology, structure.positions


def parse_cofactor(spec) -> Tuple[object, Optional[str]]:
    """``"FILE_OR_SMILES[:RESNAME]"`` -> (template, residue name or None); Ligands and Mols pass as they are."""
    if not isinstance(spec, str):
        return spec, getattr(spec, "resname", None)
    text = spec.strip()
    head, sep, tail = text.rpartition(":")
    if sep and head and _RESNAME.match(tail):
        return head, tail
    return text, None


def _template_names(forcefield) -> set:
    # ForceField keeps its residue templates in _templates (no public accessor); the builder's
    # template generators read the same attribute.
    return set(getattr(forcefield, "_templates", {}))


def _unknown_residue_message(path, unknown: Sequence, prepare: bool) -> str:
    by_name: Dict[str, list] = {}
    for residue in unknown:
        by_name.setdefault(residue.name, []).append(residue)
    listed = []
    for name, residues in by_name.items():
        shown = ", ".join(residue_label(r) for r in residues[:5]) + (f", ... ({len(residues)})" if len(residues) > 5 else "")
        listed.append(f"{shown} ({len(list(residues[0].atoms()))} atoms)")
    example = next(iter(by_name))
    hints = [f"a small molecule kept in MM (cofactor, second ligand): --cofactor FILE_OR_SMILES:{example} "
             "(cofactors=[...]; GAFF2 parameters)",
             f"the ligand to embed: --ligand-resname {example} --ligand-template FILE_OR_SMILES",
             "a modified residue or a metal site: --forcefield FILE.xml (forcefield_files=[...])",
             f"not needed: --remove-residues {example} (remove_residues=[...])"]
    replaceable = sorted(name for name in by_name if name in PDBFIXER_SUBSTITUTIONS)
    if replaceable and not prepare:
        hints.insert(0, "a modified residue PDBFixer knows (" + ", ".join(
            f"{n} -> {PDBFIXER_SUBSTITUTIONS[n]}" for n in replaceable) + "): --prepare replaces it by its standard residue")
    return (f"protein file '{path}' has residues without a force-field template: {'; '.join(listed)}. "
            "Give each one a template: " + "; ".join(hints))


def _check_templates(topology, known, path, prepare: bool, ligand_resname: Optional[str] = None,
                     cofactors: Iterable = ()) -> None:
    """Refuse residues of ``topology`` with no template (names in ``known``, the ligand's and the
    cofactors' residues aside), naming them and the options that give them one."""
    exempt = set(known) | ({ligand_resname} if ligand_resname else set())
    for spec in cofactors:
        template, resname = parse_cofactor(spec)
        exempt |= {resname} if resname else {r.name for r in _cofactor_residues(topology, template, None, known, path)}
    unknown = [r for r in topology.residues() if r.name not in exempt and r.name not in app.PDBFile._standardResidues]
    if unknown:
        raise StructureError(_unknown_residue_message(path, unknown, prepare))


def _extract(modeller, residues, template, label: str) -> List[Ligand]:
    molecules = [molecule_from_residue(r, modeller.positions, template, template_label=label) for r in residues]
    modeller.delete([a for r in residues for a in r.atoms()])
    return molecules


def prepare_protein(protein, ph: float = 7.0, protein_ff: str = "amber14-all.xml", water_model: str = "tip3p",
                    forcefield_files: Iterable[str] = (), remove_waters: bool = False,
                    remove_residues: Iterable[str] = (), prepare: bool = False, add_missing_termini: bool = False,
                    keep_hydrogens: Optional[bool] = None, cofactors: Iterable = (),
                    ligand_resname: Optional[str] = None, ligand_template=None, ligand_ff: str = "gaff2",
                    charge_method: str = "bcc", ligand_cache: bool = True,
                    check_ligand: Optional[Callable[[Ligand], None]] = None) -> PreparedProtein:
    """Read, repair (optionally) and protonate a protein structure; see the module docstring.

    Parameters
    ----------
    protein : str or Path
        PDB or mmCIF file.
    ph : float
        pH at which the forms of titratable residues without hydrogens are chosen.
    protein_ff, water_model : str
        Protein force field and water model (its file gives the crystal waters' and ions' templates).
    forcefield_files : iterable of str
        Extra force-field XML files (modified residues, metal sites).
    remove_waters : bool
        Drop the crystal waters.
    remove_residues : iterable of str
        Residue names to drop from the structure.
    prepare : bool
        Repair the structure with PDBFixer first.
    add_missing_termini : bool
        With ``prepare``, also add missing residues at chain ends.
    keep_hydrogens : bool or None
        None or True: residues carrying hydrogens keep their protonation state; False: every
        titratable residue's form is chosen at ``ph`` (see :mod:`.protonation`).
    cofactors : iterable
        ``"FILE_OR_SMILES[:RESNAME]"`` strings (or RDKit Mols / Ligands): small molecules of the
        structure parametrised with GAFF2 and kept in MM; without RESNAME the residue is found
        by its heavy atoms.
    ligand_resname, ligand_template : str, optional
        Take the ligand out of the structure: the residue ``ligand_resname``, its chemistry from
        ``ligand_template`` (SMILES or SDF/MOL2 file).
    ligand_ff, charge_method, ligand_cache :
        How cofactors are parametrised (as ligands).
    check_ligand : callable, optional
        Called with the ligand taken from the structure as soon as it is made (before any
        parametrisation); raises to refuse it.

    Raises
    ------
    InputFileError, StructureError, LigandError, ParameterizationError
        Naming the file and residue (chain and file number) and what to do.
    """
    path = Path(protein)
    if water_model not in WATER_XML:
        raise HybridError(f"water model must be one of {', '.join(WATER_XML)}, not {water_model!r}")
    files = (protein_ff, WATER_XML[water_model], *[str(f) for f in forcefield_files])
    try:
        forcefield = MMForceField(*files)
    except (ValueError, OSError) as exc:
        raise InputFileError(f"cannot load the force-field files {', '.join(files)}: {exc}") from exc
    known = _template_names(forcefield)
    # residues whose templates come from the extra files (modified residues): hydrogens from them
    extra = known - _template_names(MMForceField(*files[:2])) if forcefield_files else set()

    report: dict = {"source": str(path)}
    drop = set(remove_residues) | ({"HOH"} if remove_waters else set())
    if prepare:
        # refuse residues without templates before PDBFixer's slow work (those it replaces aside)
        _check_templates(load_structure(path)[0], known | drop | set(PDBFIXER_SUBSTITUTIONS), path, prepare,
                         ligand_resname if ligand_template is not None else None, cofactors)

        progress(f"repairing {path} with PDBFixer")
        fixed = prepare_structure(path, keep_residues=known, add_missing_termini=add_missing_termini)
        topology, positions = fixed.topology, fixed.positions
        report["preparation"] = fixed.report
        modelled = fixed.modelled_residues
        progress(f"PDBFixer: {summarize_preparation(fixed.report)}")
    else:
        progress(f"reading protein {path}")
        topology, positions = load_structure(path)
        modelled = set()
    modeller = app.Modeller(topology, positions)

    removed = []
    waters = [r for r in modeller.topology.residues() if r.name == "HOH"]
    doomed = [r for r in modeller.topology.residues() if r.name in drop]
    if doomed:
        removed = [f"{name} x{n}" for name, n in sorted(Counter(r.name for r in doomed).items())]
        modeller.delete([a for r in doomed for a in r.atoms()])
    missing = sorted(drop - {r.name for r in doomed} - {"HOH"})
    if missing:
        raise StructureError(f"protein file '{path}' has no residue named {', '.join(missing)} to remove "
                             f"(remove_residues)")

    ligand = None
    if ligand_template is not None:
        if not ligand_resname:
            raise HybridError("a ligand template needs the ligand's residue name in the structure "
                              "(--ligand-resname XYZ, ligand_resname=)")
        residues = residues_named(modeller.topology, ligand_resname)
        if len(residues) != 1:
            present = sorted({r.name for r in modeller.topology.residues() if r.name not in known
                              and r.name not in app.PDBFile._standardResidues})
            raise StructureError(
                f"protein file '{path}' has {len(residues)} residues named {ligand_resname}"
                + (f" ({', '.join(residue_label(r) for r in residues)}): the ligand is one residue; keep one "
                   "copy in the file" if residues else
                   f": give the ligand's residue name (residues without templates: {', '.join(present) or 'none'})"))
        ligand = _extract(modeller, residues, ligand_template, _label(ligand_template))[0]
        if check_ligand is not None:
            check_ligand(ligand)
        report["ligand_from_structure"] = {"residue": residue_label(residues[0]), "source": ligand.source}
        progress(f"ligand {ligand.name} taken from the structure ({ligand.n_atoms} atoms, net charge "
                 f"{ligand.net_charge:+d}; {ligand.source})")

    cofactor_molecules: List[Ligand] = []
    report["cofactors"] = []
    for spec in cofactors:
        template, resname = parse_cofactor(spec)
        residues = _cofactor_residues(modeller.topology, template, resname, known, path)
        found = _extract(modeller, residues, template, _label(template))
        cofactor_molecules.extend(found)
        report["cofactors"].append({"residues": [m.name for m in found], "template": _label(template),
                                    "net_charge": found[0].net_charge, "atoms": found[0].n_atoms,
                                    "hydrogens": found[0].source.rsplit("; hydrogens ", 1)[-1]})
        progress(f"cofactor {', '.join(m.name for m in found)}: {found[0].n_atoms} atoms, net charge "
                 f"{found[0].net_charge:+d} (GAFF2, kept in MM)")

    _check_templates(modeller.topology, known, path, prepare)

    n_before = modeller.topology.getNumAtoms()
    try:
        protonation = add_hydrogens(modeller, forcefield, ph=ph, keep_hydrogens=keep_hydrogens,
                                    template_residues=extra)
    except ValueError as exc:
        raise StructureError(_hydrogen_failure(path, modeller.topology, exc, prepare)) from exc
    report["protonation"] = protonation
    report["hydrogens_added"] = modeller.topology.getNumAtoms() - n_before
    progress(f"protein: {modeller.topology.getNumResidues()} residues, {report['hydrogens_added']} hydrogens "
             f"added at pH {ph:g}")
    if protonation:
        progress("protonation states:\n" + summarize_protonation(protonation))

    ions = Counter(r.name for r in modeller.topology.residues() if len(list(r.atoms())) == 1 and r.name != "HOH")
    report["waters"] = {"in_file": len(waters), "kept": 0 if remove_waters else len(waters)}
    report["ions"] = dict(sorted(ions.items()))
    report["removed"] = removed
    if waters or ions:
        progress(f"kept from the file: {report['waters']['kept']} crystal waters, ions "
                 f"{', '.join(f'{k} x{v}' for k, v in report['ions'].items()) or 'none'}")
    for molecule in cofactor_molecules:
        top, pos = molecule.to_openmm()
        modeller.add(top, pos)

    parameters = []
    seen = set()
    for molecule in cofactor_molecules:
        if molecule.identity_key not in seen:
            seen.add(molecule.identity_key)
            parameters.append(parametrize(molecule, ligand_ff, cache=ligand_cache, charge_method=charge_method))
    # The water model's file is needed for crystal waters and ions only (explicit solvent adds it
    # anyway); without them the System is what the protein force field alone gives.
    if not waters_or_ions(modeller.topology):
        files = tuple(f for f in files if f != WATER_XML[water_model])
    return PreparedProtein(modeller.topology, modeller.positions, str(path), files, cofactor_molecules, parameters,
                           ligand, report, modelled)


def waters_or_ions(topology) -> bool:
    """Whether ``topology`` holds waters or single-atom residues (ions)."""
    return any(r.name == "HOH" or len(r) == 1 for r in topology.residues())


def _label(template) -> str:
    if isinstance(template, Ligand):
        return repr(template.name)
    if isinstance(template, str):
        return repr(template)
    return "(RDKit molecule)"


def _cofactor_residues(topology, template, resname, known, path) -> list:
    if resname is not None:
        residues = residues_named(topology, resname)
        if not residues:
            names = sorted({r.name for r in topology.residues() if r.name not in app.PDBFile._standardResidues})
            raise StructureError(f"cofactor {_label(template)}: protein file '{path}' has no residue named {resname} "
                                 f"(non-standard residues present: {', '.join(names) or 'none'})")
        return residues
    mol = load_template(template.mol if isinstance(template, Ligand) else template)
    formula = Counter(a.GetSymbol() for a in mol.GetAtoms() if a.GetAtomicNum() > 1)
    candidates = [r for r in topology.residues() if r.name not in known and r.name not in app.PDBFile._standardResidues]
    matching = {r.name for r in candidates
                if Counter(a.element.symbol for a in r.atoms() if a.element is not None and a.element.symbol != "H")
                == formula}
    if len(matching) != 1:
        listed = ", ".join(sorted({f"{r.name} ({len(list(r.atoms()))} atoms)" for r in candidates})) or "none"
        raise StructureError(f"cofactor {_label(template)}: {'no' if not matching else 'more than one'} residue name "
                             f"of '{path}' has its heavy atoms{' (' + ', '.join(sorted(matching)) + ')' if matching else ''}; "
                             f"give the residue name as FILE_OR_SMILES:RESNAME (residues without templates: {listed})")
    return residues_named(topology, matching.pop())


def _hydrogen_failure(path, topology, exc, prepare) -> str:
    residue = residue_in_openmm_message(str(exc), topology)
    where = f"residue {residue_label(residue)}" if residue is not None else "a residue"
    if residue is not None and residue.name in app.PDBFile._standardResidues:
        hint = ("it is probably missing heavy atoms: --prepare (prepare=True) adds them with PDBFixer" if not prepare
                else "its atoms do not match any template")
    else:
        hint = ("its template (from --forcefield) does not match its atoms; OpenMM adds hydrogens only to "
                "standard residues, so give this residue with all its hydrogens in the file")
    return f"cannot add hydrogens to protein file '{path}': {where}: {hint}.\nOpenMM: {exc}"

