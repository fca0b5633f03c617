"""Parameters from an OpenMM System of one molecule: the conversion every ligand route shares.

A route (GAFF2 through AmberTools' prmtop, OpenFF through openff-toolkit) creates an OpenMM
System of the molecule alone; :func:`parameters_from_system` reads its per-atom and per-term
parameters back into a :class:`~openmm_hybrid.mm.parameters.record.LigandParameters`, checking that
they can be expressed as an OpenMM residue template (Amber 1-4 scaling, exclusions from the bond
graph, proper/improper torsion conventions), and symmetrises the charges over topologically
equivalent atoms.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from openmm import unit
from rdkit import Chem

from ...errors import ParameterizationError
from .record import COULOMB14SCALE, LJ14SCALE, LigandParameters, Term


def _bond_set(mol) -> set:
    return {frozenset((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) for b in mol.GetBonds()}


def _graph_distances(mol) -> np.ndarray:
    return np.asarray(Chem.GetDistanceMatrix(mol), dtype=int)


def _symmetrize_and_fix_charges(mol, charges: Sequence[float], net_charge: int, label: str) -> List[float]:
    """Average charges over topologically equivalent atoms and remove round-off.

    Refuses a total charge differing from ``net_charge`` by more than 0.01 e.
    """
    q = np.asarray(charges, dtype=float)
    total = float(q.sum())
    if abs(total - net_charge) > 0.01:
        raise ParameterizationError(
            f"partial charges of ligand {label} sum to {total:.4f} e but the expected net charge is "
            f"{net_charge} e (sum of formal charges): check the protonation state / formal charges")
    ranks = np.asarray(list(Chem.CanonicalRankAtoms(mol, breakTies=False)))
    sym = q.copy()
    for r in np.unique(ranks):
        idx = ranks == r
        sym[idx] = q[idx].mean()
    sym += (net_charge - sym.sum()) / len(sym)
    return [float(x) for x in sym]


def parameters_from_system(system, mol, net_charge: int, label: str, atom_types: Sequence[str],
                            forcefield: str, charge_method: str, identity_key: str,
                            charges: Optional[Sequence[float]] = None) -> LigandParameters:
    """Extract per-atom/per-term parameters from an OpenMM System of the ligand alone.

    The System must have been created without constraints and with NoCutoff,
    its particles in the atom order of ``mol``.  ``charges`` (e), if given,
    replace the System's partial charges (e.g. the 6-decimal antechamber
    charges instead of the prmtop's rescaled ones); the 1-4 checks use the
    System's own charges.
    """

    n = mol.GetNumAtoms()
    if system.getNumParticles() != n:
        raise ParameterizationError(
            f"parametrised system of ligand {label} has {system.getNumParticles()} particles, expected {n}")
    bonded = _bond_set(mol)
    forces = {type(f).__name__: f for f in system.getForces()}
    for needed in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "NonbondedForce"):
        if needed not in forces:
            raise ParameterizationError(f"parametrised system of ligand {label} has no {needed}")
    unexpected = set(forces) - {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
                                "NonbondedForce", "CMMotionRemover"}
    if unexpected:
        raise ParameterizationError(
            f"parametrised system of ligand {label} contains forces that cannot be converted: {sorted(unexpected)}")
    if system.getNumConstraints():
        raise ParameterizationError("internal error: ligand system was created with constraints")

    masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(n)]

    nb = forces["NonbondedForce"]
    system_charges, sigmas, epsilons = [], [], []
    for i in range(n):
        q, s, e = nb.getParticleParameters(i)
        system_charges.append(q.value_in_unit(unit.elementary_charge))
        sigmas.append(s.value_in_unit(unit.nanometer))
        epsilons.append(e.value_in_unit(unit.kilojoule_per_mole))

    # Check that the 1-2/1-3 exclusions and scaled 1-4 pairs are the ones OpenMM's
    # ForceField derives from the bond graph with the Amber scale factors.
    dist = _graph_distances(mol)
    expected_pairs = {frozenset((i, j)) for i in range(n) for j in range(i + 1, n) if dist[i, j] <= 3}
    found_pairs = set()
    for e_idx in range(nb.getNumExceptions()):
        i, j, qq, sig, eps = nb.getExceptionParameters(e_idx)
        pair = frozenset((i, j))
        found_pairs.add(pair)
        qq = qq.value_in_unit(unit.elementary_charge ** 2)
        eps = eps.value_in_unit(unit.kilojoule_per_mole)
        if dist[i, j] == 3:
            q_expected = system_charges[i] * system_charges[j] * COULOMB14SCALE
            e_expected = math.sqrt(epsilons[i] * epsilons[j]) * LJ14SCALE
            if abs(qq - q_expected) > 1e-4 * max(1e-3, abs(q_expected)) + 1e-8 or \
                    abs(eps - e_expected) > 1e-4 * max(1e-3, e_expected) + 1e-8:
                raise ParameterizationError(
                    f"1-4 interaction of atoms {i}-{j} of ligand {label} does not use the Amber 1-4 scale "
                    f"factors (1/1.2 for electrostatics, 0.5 for Lennard-Jones); cannot convert it")
        elif dist[i, j] < 3 and (abs(qq) > 1e-12 or abs(eps) > 1e-12):
            raise ParameterizationError(f"atoms {i}-{j} of ligand {label} are bonded but not excluded")
    if found_pairs != expected_pairs:
        diff = sorted(tuple(sorted(p)) for p in found_pairs ^ expected_pairs)[:5]
        raise ParameterizationError(
            f"nonbonded exceptions of ligand {label} differ from the 1-2/1-3/1-4 pairs of its bond graph "
            f"(e.g. atom pairs {diff}); cannot convert it to an OpenMM force-field template")

    bf = forces["HarmonicBondForce"]
    bonds = []
    for b in range(bf.getNumBonds()):
        i, j, r0, k = bf.getBondParameters(b)
        bonds.append((int(i), int(j), r0.value_in_unit(unit.nanometer),
                      k.value_in_unit(unit.kilojoule_per_mole / unit.nanometer ** 2)))
    param_bonds = {frozenset((i, j)) for i, j, _, _ in bonds}
    if param_bonds != bonded or len(bonds) != len(bonded):
        raise ParameterizationError(
            f"bonds of the parametrised ligand {label} ({len(bonds)}) do not match the molecule's "
            f"bonds ({len(bonded)})")

    af = forces["HarmonicAngleForce"]
    angles = []
    for a in range(af.getNumAngles()):
        i, j, k, theta0, kk = af.getAngleParameters(a)
        angles.append((int(i), int(j), int(k), theta0.value_in_unit(unit.radian),
                       kk.value_in_unit(unit.kilojoule_per_mole / unit.radian ** 2)))

    tf = forces["PeriodicTorsionForce"]
    proper_terms: Dict[Tuple[int, int, int, int], List[Term]] = {}
    amber_impr: Dict[Tuple[int, int, int, int], List[Term]] = {}
    center_first: Dict[Tuple[int, int, int, int], List[Term]] = {}

    def is_bond(a, b):
        return frozenset((a, b)) in bonded

    for t in range(tf.getNumTorsions()):
        i, j, k, l, per, phase, kk = tf.getTorsionParameters(t)
        term = (int(per), phase.value_in_unit(unit.radian), kk.value_in_unit(unit.kilojoule_per_mole))
        quad = (int(i), int(j), int(k), int(l))
        if is_bond(i, j) and is_bond(j, k) and is_bond(k, l):
            key = min(quad, quad[::-1])
            proper_terms.setdefault(key, []).append(term)
            continue
        # Improper: find the atom bonded to the three others.  A dihedral is
        # unchanged by reversing its atoms, so centre-2nd becomes centre-3rd
        # (Amber) and centre-4th becomes centre-1st (SMIRNOFF/CHARMM).
        if all(is_bond(k, x) for x in (i, j, l)):
            amber_impr.setdefault(quad, []).append(term)
        elif all(is_bond(j, x) for x in (i, k, l)):
            amber_impr.setdefault(quad[::-1], []).append(term)
        elif all(is_bond(i, x) for x in (j, k, l)):
            center_first.setdefault(quad, []).append(term)
        elif all(is_bond(l, x) for x in (i, j, k)):
            center_first.setdefault(quad[::-1], []).append(term)
        else:
            raise ParameterizationError(
                f"torsion {quad} of ligand {label} is neither a proper torsion nor an improper around "
                "a central atom; cannot convert it")

    propers = [(*q, terms) for q, terms in sorted(proper_terms.items())]
    if amber_impr and center_first:
        raise ParameterizationError(
            f"ligand {label} mixes improper-torsion conventions; cannot convert it to an OpenMM template")
    if center_first:
        # SMIRNOFF trefoil: (c, a, b, d), (c, b, d, a), (c, d, a, b) with identical terms.
        ordering = "smirnoff"
        impropers, seen = [], set()
        for quad, terms in sorted(center_first.items()):
            c, a, b, d = quad
            if quad in seen:
                continue
            cyc = [(c, a, b, d), (c, b, d, a), (c, d, a, b)]
            if not all(q in center_first and sorted(center_first[q]) == sorted(terms) for q in cyc):
                raise ParameterizationError(
                    f"improper torsions around atom {c} of ligand {label} are not a SMIRNOFF trefoil; "
                    "cannot convert them")
            seen.update(cyc)
            impropers.append((c, a, b, d, terms))
    else:
        ordering = "amber"
        impropers = [(*q, terms) for q, terms in sorted(amber_impr.items())]
        # OpenMM applies at most one improper definition per (centre, 3 neighbours).
        groups: Dict[Tuple[int, frozenset], int] = {}
        for i, j, k, l, _ in impropers:
            g = (k, frozenset((i, j, l)))
            groups[g] = groups.get(g, 0) + 1
            if groups[g] > 1:
                raise ParameterizationError(
                    f"ligand {label} has several differently ordered impropers around atom {k} on the "
                    "same neighbours; cannot convert them to an OpenMM template")

    if charges is not None:
        if len(charges) != n or max(abs(a - b) for a, b in zip(charges, system_charges)) > 1e-4:
            raise ParameterizationError(f"charges of ligand {label} in the mol2 and prmtop files differ")
    else:
        charges = system_charges
    charges = _symmetrize_and_fix_charges(mol, charges, net_charge, label)
    return LigandParameters(
        elements=[a.GetSymbol() for a in mol.GetAtoms()], atom_types=list(atom_types), masses=masses,
        charges=charges, sigmas=sigmas, epsilons=epsilons, bonds=bonds, angles=angles, propers=propers,
        impropers=impropers, net_charge=int(net_charge), forcefield=forcefield, charge_method=charge_method,
        improper_ordering=ordering, identity_key=identity_key)


