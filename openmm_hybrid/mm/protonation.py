"""Hydrogens for a protein: keep the protonation states the file gives, choose the others at a pH.

OpenMM's ``Modeller.addHydrogens`` picks every titratable residue's form at the pH unless told,
and only ever adds hydrogens: a cysteine the file gives as a thiolate (no HG, e.g. in a zinc
site) gets its HG back at pH 7, a neutral lysine its third HZ.  :func:`add_hydrogens` therefore

- reads the form of each titratable residue that already carries hydrogens from those hydrogens
  (:func:`form_from_hydrogens`) and passes it to ``addHydrogens`` (``keep_hydrogens`` None or
  True), so the file's protonation state is kept;
- lets OpenMM choose at the pH for residues without hydrogens (raw structures), or for every
  titratable residue with ``keep_hydrogens=False`` (their hydrogens are removed first);
- returns one entry per titratable residue: its form, and whether it was kept from the file,
  chosen at the pH, or changed from the file's.

Forms (Amber residue names): HID/HIE/HIP, CYS (SH), CYX (disulfide), CYM (thiolate), ASP/ASH,
GLU/GLH, LYS/LYN.
"""
from __future__ import annotations

import io
from typing import Dict, Iterable, List, Optional
from xml.sax.saxutils import quoteattr

import openmm.app as app

from .residue_labels import residue_label

__all__ = ["TITRATABLE", "form_from_hydrogens", "add_hydrogens", "summarize_protonation",
           "template_hydrogen_definitions"]

#: Residue names whose protonation state is chosen (OpenMM's hydrogen definitions' names).
TITRATABLE = ("HIS", "CYS", "ASP", "GLU", "LYS")

# The variant names Modeller.addHydrogens takes for each form; a thiolate is OpenMM's CYX
# variant (no hydrogen on SG), which the force field then matches to its CYM template.
_VARIANT = {"HID": "HID", "HIE": "HIE", "HIP": "HIP", "CYS": "CYS", "CYX": "CYX", "CYM": "CYX",
            "ASP": "ASP", "ASH": "ASH", "GLU": "GLU", "GLH": "GLH", "LYS": "LYS", "LYN": "LYN"}


def _is_hydrogen(atom) -> bool:
    return atom.element is not None and atom.element.symbol in ("H", "D")


def _disulfide(residue, bonded) -> bool:
    sulfur = [a for a in residue.atoms() if a.name == "SG"]
    return bool(sulfur) and any(other.residue is not residue and other.element is not None
                                and other.element.symbol == "S" for other in bonded.get(sulfur[0], ()))


def form_from_hydrogens(residue, bonded: Dict) -> Optional[str]:
    """The form of a titratable residue as its hydrogens say, or None (no hydrogens, not titratable).

    Parameters
    ----------
    residue : openmm.app.topology.Residue
    bonded : dict
        Atom -> bonded atoms, over the whole topology (a disulfide bond crosses residues).
    """
    if residue.name not in TITRATABLE:
        return None
    names = {a.name for a in residue.atoms() if _is_hydrogen(a)}
    if not names:
        return None
    if residue.name == "HIS":
        d1, e2 = "HD1" in names, "HE2" in names
        return {(True, True): "HIP", (True, False): "HID", (False, True): "HIE"}.get((d1, e2))
    if residue.name == "CYS":
        if "HG" in names:
            return "CYS"
        return "CYX" if _disulfide(residue, bonded) else "CYM"
    if residue.name == "ASP":
        return "ASH" if names & {"HD1", "HD2"} else "ASP"
    if residue.name == "GLU":
        return "GLH" if names & {"HE1", "HE2"} else "GLU"
    n_hz = len([n for n in names if n.startswith("HZ")])
    return "LYS" if n_hz >= 3 else "LYN" if n_hz == 2 else None


def _bonded(topology) -> Dict:
    bonded: Dict = {atom: [] for atom in topology.atoms()}
    for a, b in topology.bonds():
        bonded[a].append(b)
        bonded[b].append(a)
    return bonded


def template_hydrogen_definitions(forcefield, names: Iterable[str]) -> Optional[str]:
    """``Modeller`` hydrogen definitions (XML) for residues known from force-field templates only.

    OpenMM adds hydrogens to the residues of its own definitions (standard amino acids,
    nucleotides, water); a modified residue given by a template file (``--forcefield``) would
    stay without them.  Each hydrogen of the template becomes a definition on its bonded atom
    (the backbone amide H, as for standard residues, not at an N-terminus).

    Returns
    -------
    str or None
        The XML, or None when none of ``names`` has a template with hydrogens.
    """
    # ForceField keeps its templates in _templates (no public accessor).
    templates = getattr(forcefield, "_templates", {})
    residues = []
    for name in sorted(set(names)):
        template = templates.get(name)
        if template is None:
            continue
        lines = []
        for atom in template.atoms:
            if atom.element is None or atom.element.symbol not in ("H", "D") or not atom.bondedTo:
                continue
            parent = template.atoms[atom.bondedTo[0]].name
            terminal = ' terminal="-C"' if (atom.name, parent) == ("H", "N") else ""
            lines.append(f"  <H name={quoteattr(atom.name)} parent={quoteattr(parent)}{terminal}/>")
        if lines:
            residues.append(f" <Residue name={quoteattr(name)}>\n" + "\n".join(lines) + "\n </Residue>")
    return "<Residues>\n" + "\n".join(residues) + "\n</Residues>\n" if residues else None


def add_hydrogens(modeller, forcefield, ph: float = 7.0, keep_hydrogens: Optional[bool] = None,
                  template_residues: Iterable[str] = ()) -> List[dict]:
    """Add the protein's missing hydrogens (in place), keeping the file's protonation states.

    Parameters
    ----------
    modeller : openmm.app.Modeller
    forcefield : openmm.app.ForceField
        Gives the templates (and hydrogen positions) of residues outside OpenMM's hydrogen
        definitions (waters, ions, modified residues with their templates).
    ph : float
    keep_hydrogens : bool or None
        None (default) or True: residues that carry hydrogens keep their form; False: the
        hydrogens of titratable residues are removed and every form is chosen at ``ph``.
    template_residues : iterable of str
        Residue names known from extra force-field files (modified residues): they get hydrogen
        definitions from their templates (:func:`template_hydrogen_definitions`; registered
        with ``Modeller.loadHydrogenDefinitions`` for the rest of the process).

    Returns
    -------
    list of dict
        One entry per titratable residue: ``residue`` (name, file number, chain), ``form``,
        ``how`` (``"kept from the file"``, ``"chosen at pH X"``, or ``"changed from F at pH X"``).

    Raises
    ------
    ValueError
        From OpenMM, when a residue cannot get hydrogens (callers name the residue).
    """
    topology = modeller.topology
    present = {r.name for r in topology.residues()} & set(template_residues)
    definitions = template_hydrogen_definitions(forcefield, present - set(app.PDBFile._standardResidues))
    if definitions is not None:
        app.Modeller.loadHydrogenDefinitions(io.StringIO(definitions))
    bonded = _bonded(topology)
    file_forms = {r.index: form_from_hydrogens(r, bonded) for r in topology.residues()}
    if keep_hydrogens is False:
        titratable_h = [a for r in topology.residues() if r.name in TITRATABLE for a in r.atoms() if _is_hydrogen(a)]
        # Residue indices do not change when atoms are deleted.
        modeller.delete(titratable_h)
        variants = None
    else:
        variants = [_VARIANT[file_forms[r.index]] if file_forms[r.index] else None for r in topology.residues()]
    modeller.addHydrogens(forcefield, pH=ph, variants=variants)
    bonded = _bonded(modeller.topology)
    report = []
    for residue in modeller.topology.residues():
        if residue.name not in TITRATABLE:
            continue
        form = form_from_hydrogens(residue, bonded)
        before = file_forms.get(residue.index)
        if before is not None and keep_hydrogens is not False:
            how = "kept from the file"
        elif before is not None and before != form:
            how = f"changed from {before} at pH {ph:g}"
        else:
            how = f"chosen at pH {ph:g}"
        report.append({"residue": residue_label(residue), "form": form, "how": how})
    return report


def summarize_protonation(report: List[dict]) -> str:
    """The protonation report for the terminal: every residue whose form was chosen or changed (by
    form), and the number of each form kept from the file."""
    groups: Dict[str, Dict[str, List[str]]] = {}
    for entry in report:
        groups.setdefault(entry["how"], {}).setdefault(entry["form"] or "?", []).append(entry["residue"].split(" ", 1)[1])
    lines = []
    for how, forms in groups.items():
        if how == "kept from the file":
            lines.append(f"{how}: " + ", ".join(f"{form} x{len(r)}" for form, r in sorted(forms.items())))
        else:
            lines.append(f"{how}: " + "; ".join(f"{form} {', '.join(r)}" for form, r in sorted(forms.items())))
    return "\n".join(lines)
