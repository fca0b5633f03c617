"""An independent NumPy (float64) implementation of EMLE, for testing only.

Written from the parameter pack's EQUATIONS.txt (the account of emle-engine's formulas),
separately from openmm_hybrid.models.emle: loops and explicit formulas, no torch, no code
shared with the package.  Inputs are in angstrom and e, outputs in atomic units
(Hartree, Bohr), as in emle-engine.  The AEV uses torchani's float32-rounded ANI-2x constants
(the values the ANI-2x AEV computer holds), written here as float32 decimals.
"""
import itertools
import math

import numpy as np
import scipy.io
from scipy.special import erf

ANGSTROM_TO_BOHR = 1.8897261258369282
SPECIES = {1: 0, 6: 1, 7: 2, 8: 3, 16: 4}
N_SLOTS = 7

F32 = np.float32
RCR, RCA = 5.1, 3.5
ETA_R = float(F32(19.7))
SHF_R = [float(F32(0.8 + 0.26875 * k)) for k in range(16)]
ETA_A = float(F32(12.5))
ZETA = float(F32(14.1))
SHF_A = [float(F32(0.8 + 0.3375 * a)) for a in range(8)]
SHF_Z = [float(F32(math.pi / 8 + b * math.pi / 4)) for b in range(4)]


def load(path):
    return scipy.io.loadmat(str(path), squeeze_me=True)


def cutoff_cosine(r, rc):
    return 0.5 * math.cos(math.pi * r / rc) + 0.5 if r <= rc else 0.0


def aev(species, xyz):
    """ANI AEV (7-species layout) of every atom; xyz in angstrom, species EMLE ids."""
    n = len(species)
    pairs = [(p, q) for p in range(N_SLOTS) for q in range(p, N_SLOTS)]
    pair_index = {pq: i for i, pq in enumerate(pairs)}
    out = np.zeros((n, 16 * N_SLOTS + 32 * len(pairs)))
    for i in range(n):
        for j in range(n):
            if j == i:
                continue
            r = np.linalg.norm(xyz[j] - xyz[i])
            if r <= RCR:
                for k in range(16):
                    out[i, 16 * species[j] + k] += 0.25 * math.exp(-ETA_R * (r - SHF_R[k]) ** 2) * cutoff_cosine(r, RCR)
        others = [j for j in range(n) if j != i]
        for j, k in itertools.combinations(others, 2):
            vj, vk = xyz[j] - xyz[i], xyz[k] - xyz[i]
            rj, rk = np.linalg.norm(vj), np.linalg.norm(vk)
            if rj > RCA or rk > RCA:
                continue
            theta = math.acos(0.95 * float(vj @ vk) / (rj * rk))
            p = pair_index[tuple(sorted((species[j], species[k])))]
            radial = np.exp(-ETA_A * ((rj + rk) / 2 - np.array(SHF_A)) ** 2)  # index a
            angular = 2 * ((1 + np.cos(theta - np.array(SHF_Z))) / 2) ** ZETA  # index b
            block = np.outer(radial, angular).ravel() * cutoff_cosine(rj, RCA) * cutoff_cosine(rk, RCA)  # 4a+b
            start = 16 * N_SLOTS + 32 * p
            out[i, start:start + 32] += block
    return out


def features(params, species, xyz):
    """Mask, then normalise (the convention of the Oct-2024 code this file comes from)."""
    g = aev(species, xyz)[:, params["aev_mask"].astype(bool)]
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def gpr(params, species, feats, key):
    """GPR prediction per atom: ((f_i X_e^T)^2) K_e^-1 (y_e - mean) + mean, K_e = (X_e X_e^T)^2 + sigma^2 I."""
    out = np.zeros(len(species))
    for e in set(species):
        n = int(params["n_ref"][e])
        x = params["ref_aev"][e, :n].astype(np.float64)
        y = params[key][e, :n].astype(np.float64)
        kmat = (x @ x.T) ** 2 + 1e-3 ** 2 * np.eye(n)
        c = np.linalg.solve(kmat, y - y.mean())
        for i in [i for i, ei in enumerate(species) if ei == e]:
            out[i] = ((feats[i] @ x.T) ** 2) @ c + y.mean()
    return out


def properties(params, atomic_numbers, xyz_angstrom, net_charge=0, alpha_mode="species"):
    """s (Bohr), chi, q (e), alpha (Bohr^3) per atom."""
    species = [SPECIES[int(z)] for z in atomic_numbers]
    feats = features(params, species, np.asarray(xyz_angstrom, dtype=np.float64))
    s = gpr(params, species, feats, "s_ref")
    chi = gpr(params, species, feats, "chi_ref")
    xyz = np.asarray(xyz_angstrom, dtype=np.float64) * ANGSTROM_TO_BOHR
    n = len(species)
    sg = float(params["a_QEq"]) * s
    m = np.zeros((n + 1, n + 1))
    for i in range(n):
        for j in range(n):
            if i == j:
                m[i, i] = 1 / (math.sqrt(math.pi) * sg[i])
            else:
                r = np.linalg.norm(xyz[i] - xyz[j])
                m[i, j] = erf(r / (math.sqrt(2) * math.sqrt(sg[i] ** 2 + sg[j] ** 2))) / r
        m[i, n] = m[n, i] = 1.0
    q = np.linalg.solve(m, np.concatenate([-chi, [net_charge]]))[:n]
    q_core = np.array([params["q_core"][e] for e in species], dtype=np.float64)
    q_val = q - q_core
    k_z = np.array([params["k_Z"][e] for e in species], dtype=np.float64)
    alpha = k_z * (-60.0 * q_val * s ** 3)
    if alpha_mode == "reference":
        alpha = alpha * gpr(params, species, feats, "sqrtk_ref") ** 2
    return {"s": s, "chi": chi, "q": q, "q_core": q_core, "q_val": q_val, "alpha": alpha, "xyz": xyz}


def energies(params, atomic_numbers, xyz_qm, xyz_mm, charges_mm, net_charge=0, alpha_mode="species"):
    """(E_static, E_induced) in Hartree; positions in angstrom."""
    p = properties(params, atomic_numbers, xyz_qm, net_charge, alpha_mode)
    xyz, s, q_core, q_val, alpha = p["xyz"], p["s"], p["q_core"], p["q_val"], p["alpha"]
    mm = np.asarray(xyz_mm, dtype=np.float64) * ANGSTROM_TO_BOHR
    charges = np.asarray(charges_mm, dtype=np.float64)
    n, m = len(xyz), len(mm)
    e_static = 0.0
    for a in range(m):
        v = 0.0
        for i in range(n):
            r = np.linalg.norm(xyz[i] - mm[a])
            t0 = (1 - (1 + r / (2 * s[i])) * math.exp(-r / s[i])) / r
            v += q_core[i] / r + q_val[i] * t0
        e_static += charges[a] * v
    # induced dipoles
    big = np.zeros((3 * n, 3 * n))
    for i in range(n):
        big[3 * i:3 * i + 3, 3 * i:3 * i + 3] = np.eye(3) / alpha[i]
        for j in range(n):
            if i == j:
                continue
            rv = xyz[i] - xyz[j]
            d = np.linalg.norm(rv)
            u = d ** 3 / (float(params["a_Thole"]) * math.sqrt(alpha[i] * alpha[j]))
            l3 = 1 - math.exp(-u)
            l5 = 1 - (1 + u) * math.exp(-u)
            big[3 * i:3 * i + 3, 3 * j:3 * j + 3] = l3 * np.eye(3) / d ** 3 - 3 * l5 * np.outer(rv, rv) / d ** 5
    field = np.zeros((n, 3))
    for i in range(n):
        sp = 2 * s[i]
        for a in range(m):
            rv = xyz[i] - mm[a]
            r = np.linalg.norm(rv)
            f1 = 1 - (1 + r / sp + r ** 2 / (2 * sp ** 2)) * math.exp(-r / sp)
            field[i] += charges[a] * f1 * rv / r ** 3
    mu = np.linalg.solve(big, field.ravel()).reshape(n, 3)
    e_induced = 0.0
    for a in range(m):  # potential of the induced dipoles at the MM sites, undamped
        v = sum(mu[i] @ (mm[a] - xyz[i]) / np.linalg.norm(mm[a] - xyz[i]) ** 3 for i in range(n))
        e_induced += 0.5 * charges[a] * v
    return e_static, e_induced
