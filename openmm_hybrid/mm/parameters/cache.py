"""The on-disk cache of ligand parameters.

Entries live under ``cache_dir("ligands")`` (``$OPENMM_HYBRID_CACHE``), one JSON file per molecule,
force field and charge method, keyed by the ligand's identity (canonical isomeric SMILES + net
charge) and :data:`CACHE_FORMAT_VERSION`.  A hit is mapped onto the new ligand's atom order by
graph isomorphism (the conformer decides between symmetry-equivalent mappings), so the slow charge
calculation runs once per molecule.

An entry is used only if its checksum (SHA-256 of its parameters) holds and the parameters fit
the molecule (:func:`check_parameters`: atom count, elements, bonds, charges summing to the formal
charge); otherwise a warning names the problem and the parameters are computed again.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import List, Optional

import networkx as nx
import numpy as np
from networkx.algorithms import isomorphism as iso
from rdkit import Chem

from ..._files import write_text_atomic
from ..._util import cache_dir, progress
from ..ligand import Ligand
from .record import LigandParameters

#: Bump when the cached JSON layout or the way parameters are derived changes.
CACHE_FORMAT_VERSION = 2
#: Largest accepted difference between the sum of the charges and the formal charge, in e
#: (stored charges are corrected to sum to it exactly, up to float round-off).
CHARGE_TOLERANCE = 1e-4


def _cache_key(ligand: Ligand, forcefield: str, charge_method: str) -> str:
    payload = json.dumps([ligand.identity_key, forcefield, charge_method, CACHE_FORMAT_VERSION])
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(ligand: Ligand, forcefield: str, charge_method: str) -> Path:
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


def parameters_checksum(parameters: dict) -> str:
    """SHA-256 of a parameter record (``LigandParameters.to_dict()``), independent of key order."""
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()


def check_parameters(params: LigandParameters, ligand: Ligand) -> Optional[str]:
    """Why ``params`` (in the atom order of ``ligand``) do not fit the molecule, or None if they do.

    Checks the atom count, the elements in order, the bonds (every bond of the molecule has a
    bond term, and no other pair has one) and that the charges sum to the formal charge.
    """
    if params.n_atoms != ligand.n_atoms:
        return f"{params.n_atoms} atoms for a molecule of {ligand.n_atoms}"
    if params.elements != ligand.elements:
        wrong = next(i for i, (a, b) in enumerate(zip(params.elements, ligand.elements)) if a != b)
        return f"atom {wrong} is {params.elements[wrong]} in the cache but {ligand.elements[wrong]} in the molecule"
    if int(params.net_charge) != int(ligand.net_charge):
        return f"net charge {params.net_charge:+d} e for a molecule of formal charge {ligand.net_charge:+d} e"
    total = float(sum(params.charges))
    if not math.isfinite(total) or abs(total - ligand.net_charge) > CHARGE_TOLERANCE:
        return f"the charges sum to {total:+.4f} e but the molecule's formal charge is {ligand.net_charge:+d} e"
    cached_bonds = {tuple(sorted((int(i), int(j)))) for i, j, _, _ in params.bonds}
    bonds = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in ligand.mol.GetBonds()}
    if cached_bonds != bonds:
        return f"the bond terms do not match the molecule's bonds ({len(cached_bonds ^ bonds)} differ)"
    return None


def load_cached(ligand: Ligand, forcefield: str, charge_method: str) -> Optional[LigandParameters]:
    """Cached parameters of ``ligand`` in its atom order, or None (no entry, or one that fails a check)."""
    path = cache_path(ligand, forcefield, charge_method)
    if not path.exists():
        return None

    def reject(reason: str) -> None:
        progress(f"warning: cached parameters for ligand {ligand.name!r} in {path} are not usable ({reason}); "
                 f"computing them again")

    try:
        data = json.loads(path.read_text())
        if data.get("format_version") != CACHE_FORMAT_VERSION or data.get("identity_key") != ligand.identity_key:
            return None
        if data.get("parameters_sha256") != parameters_checksum(data["parameters"]):
            reject("checksum mismatch: the file was changed or damaged")
            return None
        cached_mol = Chem.MolFromMolBlock(data["molblock"], removeHs=False, sanitize=True)
        params = LigandParameters.from_dict(data["parameters"], from_cache=True)
    except Exception as exc:  # corrupt or foreign file: recompute
        reject(f"unreadable: {type(exc).__name__}: {exc}")
        return None
    if cached_mol is None or params.n_atoms != ligand.n_atoms:
        reject(f"{params.n_atoms} atoms for a molecule of {ligand.n_atoms}")
        return None
    mapping = _isomorphism(cached_mol, ligand.mol)
    if mapping is None:
        reject("its molecule does not map onto this one")
        return None
    remapped = params.remapped(mapping)
    problem = check_parameters(remapped, ligand)
    if problem is not None:
        reject(problem)
        return None
    return remapped


def store_cache(ligand: Ligand, params: LigandParameters) -> None:
    path = cache_path(ligand, params.forcefield, params.charge_method)
    parameters = params.to_dict()
    data = {
        "format_version": CACHE_FORMAT_VERSION,
        "identity_key": ligand.identity_key,
        "name": ligand.name,
        "molblock": Chem.MolToMolBlock(ligand.mol),
        "parameters": parameters,
        "parameters_sha256": parameters_checksum(parameters),
    }
    try:
        write_text_atomic(path, json.dumps(data))
    except OSError as exc:  # a read-only cache must not stop a run
        progress(f"could not write parameter cache {path}: {exc}")
