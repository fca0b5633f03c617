"""How residues are named in messages: residue name, the number the structure file gives, and chain.

OpenMM's own messages count residues from 0 in topology order ("residue 161 (TPO)"), which is
neither the file's residue number nor tied to a chain; :func:`residue_label` gives the file's
numbering instead, and :func:`residue_in_openmm_message` finds the residue an OpenMM message means.
"""
import re
from typing import Optional

_OPENMM_RESIDUE = re.compile(r"residue (\d+) \(([^)]*)\)")


def residue_label(residue) -> str:
    """``"TPO 160 (chain A)"``: name, file residue number (with insertion code) and chain id (if the file has one)."""
    number = f"{residue.id}{(residue.insertionCode or '').strip()}"
    chain = (residue.chain.id or "").strip()
    return f"{residue.name} {number} (chain {chain})" if chain else f"{residue.name} {number}"


def residue_in_openmm_message(message: str, topology) -> Optional[object]:
    """The residue of ``topology`` that an OpenMM message ("... residue 161 (TPO) ...") names, if any."""
    match = _OPENMM_RESIDUE.search(str(message))
    if match is None:
        return None
    index = int(match.group(1))
    residues = list(topology.residues())
    if 0 <= index < len(residues) and residues[index].name == match.group(2):
        return residues[index]
    return None
