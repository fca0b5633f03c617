"""The on-disk cache of ligand parameters.

Entries live under ``cache_dir("ligands")`` (``$OPENMM_HYBRID_CACHE``), one JSON file per molecule,
force field and charge method, keyed by the ligand's identity (canonical isomeric SMILES + net
charge) and :data:`CACHE_FORMAT_VERSION`.  A hit is mapped onto the new ligand's atom order by
graph isomorphism (the conformer decides between symmetry-equivalent mappings), so the slow charge
calculation runs once per molecule.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import List, Optional

import networkx as nx
import numpy as np
from networkx.algorithms import isomorphism as iso
from rdkit import Chem

from ..._util import cache_dir, progress
from ..ligand import Ligand
from .record import LigandParameters

#: Bump when the cached JSON layout or the way parameters are derived changes.
CACHE_FORMAT_VERSION = 1


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


def load_cached(ligand: Ligand, forcefield: str, charge_method: str) -> Optional[LigandParameters]:
    path = cache_path(ligand, forcefield, charge_method)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("format_version") != CACHE_FORMAT_VERSION or data.get("identity_key") != ligand.identity_key:
            return None
        cached_mol = Chem.MolFromMolBlock(data["molblock"], removeHs=False, sanitize=True)
        params = LigandParameters.from_dict(data["parameters"], from_cache=True)
    except Exception as exc:  # corrupt or foreign file: recompute
        progress(f"ignoring unreadable cache file {path}: {exc}")
        return None
    if cached_mol is None or params.n_atoms != ligand.n_atoms:
        return None
    mapping = _isomorphism(cached_mol, ligand.mol)
    if mapping is None:
        progress(f"cached parameters in {path} do not map onto ligand {ligand.name!r}; recomputing")
        return None
    remapped = params.remapped(mapping)
    if remapped.elements != ligand.elements:  # pragma: no cover - guarded by the isomorphism
        return None
    return remapped


def store_cache(ligand: Ligand, params: LigandParameters) -> None:
    path = cache_path(ligand, params.forcefield, params.charge_method)
    data = {
        "format_version": CACHE_FORMAT_VERSION,
        "identity_key": ligand.identity_key,
        "name": ligand.name,
        "molblock": Chem.MolToMolBlock(ligand.mol),
        "parameters": params.to_dict(),
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache must not stop a run
        progress(f"could not write parameter cache {path}: {exc}")
        tmp.unlink(missing_ok=True)


