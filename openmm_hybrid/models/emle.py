"""EMLE: the electrostatic-embedding model of Zinovjev (JCTC 2023), in TorchScript.

EMLE describes how the charge density of an ML region responds to the point charges of
its MM environment.  Per ML atom a Gaussian-process model on ANI-2x atomic environment
vectors predicts a Slater valence width ``s`` and an electronegativity ``chi``; a charge
equilibration (QEq) with Gaussian densities gives the atomic charges ``q`` for the
region's net charge; each atom is a point core charge plus a Slater valence density,
which interacts with the MM charges (static energy); and Thole-damped induced dipoles,
with polarisabilities from ``q`` and ``s``, give the induced energy.

This module reimplements the formulation of emle-engine (``emle/models/_emle.py``,
``_emle_base.py``, ``_emle_aev_computer.py``) from the equations in the parameter pack's
``EQUATIONS.txt`` and reads emle-models' ``.mat`` parameter files.  The parameter files
are GPL-licensed: they are read from a path the user gives, never shipped.

Units.  The public interface takes positions in **nm**, charges in **e** and returns
energies in **kJ/mol**.  Inside, the AEV is computed on angstrom coordinates (as in
emle-engine) and everything else in atomic units (Bohr, Hartree, e); emle-engine's own
conversion constants are used (CODATA 2014, as in ASE).

Equations (atomic units, ``i, j`` ML atoms, ``a`` MM charges ``Q_a``, ``r``/``R`` distances):

- features ``f_i = mask(G_i) / |mask(G_i)|`` (``G_i`` the ANI-2x AEV, 7-species layout, EMLE
  species ids 0..4 in slots 0..4; the mask keeps 528 of 1008 entries);
- GPR per species ``e``: ``y_i = ((f_i X_e^T)^2) K_e^-1 (y_e - mean y_e) + mean y_e`` with
  ``K_e = (X_e X_e^T)^2 + 1e-6 I`` for ``y`` in ``s``, ``chi`` (and ``sqrt k``);
- QEq: ``A_ii = 1/(sqrt(pi) a_QEq s_i)``, ``A_ij = erf(r_ij / sqrt(2 (sg_i^2 + sg_j^2))) / r_ij``
  with ``sg = a_QEq s``; ``[A 1; 1' 0][q; lambda] = [-chi; Q_total]``;
- static: ``E_static = sum_a Q_a sum_i [q_core_i / R_ia + q_val_i T0(R_ia, s_i)]``,
  ``q_val = q - q_core``, ``T0(R, s) = (1 - (1 + R/(2s)) exp(-R/s)) / R``;
- polarisabilities ``alpha_i = k_Z[e_i] (-60 q_val_i s_i^3)`` (``species``) or times ``sqrtk_i^2``
  (``reference``);
- induced dipoles ``mu = B^-1 E`` with ``B_ii = I / alpha_i`` and, for ``i != j``,
  ``B_ij = l3 I / r^3 - 3 l5 r r^T / r^5``, ``u = r^3 / (a_Thole sqrt(alpha_i alpha_j))``,
  ``l3 = 1 - exp(-u)``, ``l5 = 1 - (1 + u) exp(-u)``; the field on atom ``i`` is damped by a
  Slater density of width ``2 s_i``: ``E_i = sum_a Q_a f1(R_ia) (x_i - X_a) / R_ia^3`` with
  ``f1 = 1 - (1 + R/s' + R^2/(2 s'^2)) exp(-R/s')``, ``s' = 2 s_i``;
- induced energy ``E_ind = -1/2 sum_i mu_i . E0_i`` with the *undamped* field ``E0``.

Methods: ``electrostatic`` (static + induced), ``nonpol`` (static only), ``mm`` (the region's
MM charges as point charges, ``q_core = q_MM``, ``q_val = 0``, no induction).
"""
import math
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..errors import InputFileError, ModelError
from .base import ELEMENT_SYMBOLS, check_precision

EMLE_ELEMENTS = [1, 6, 7, 8, 16]  # species ids 0..4, fixed by emle-models (not stored in the file)
ALPHA_MODES = ("species", "reference")
EMLE_METHODS = ("electrostatic", "nonpol", "mm")

# emle-engine's constants (ase.units, CODATA 2014)
ANGSTROM_TO_BOHR = 1.8897261258369282
NM_TO_BOHR = 10.0 * ANGSTROM_TO_BOHR
HARTREE_TO_KCAL_MOL = 627.5094738898777
HARTREE_TO_KJ_MOL = HARTREE_TO_KCAL_MOL * 4.184
GPR_SIGMA = 1e-3  # hard-coded in emle-engine
AEV_SPECIES_SLOTS = 7  # the file's mask is for ANI-2x's 7-species AEV layout


def load_emle_parameters(path) -> dict:
    """Read an emle-models ``.mat`` parameter file.

    Parameters
    ----------
    path : str or Path
        MATLAB v5 file (e.g. ``emle_qm7_aev.mat``).

    Returns
    -------
    dict
        ``n_ref``, ``ref_aev``, ``s_ref``, ``chi_ref``, ``sqrtk_ref`` (may be None), ``a_QEq``,
        ``a_Thole``, ``k_Z``, ``q_core``, ``aev_mask`` as NumPy arrays / floats.
    """
    import scipy.io
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"EMLE model file '{path}' does not exist")
    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as exc:
        raise ModelError(f"'{path}' is not an EMLE .mat parameter file ({exc})") from exc
    required = ("n_ref", "ref_aev", "s_ref", "chi_ref", "a_QEq", "a_Thole", "k_Z", "q_core", "aev_mask")
    missing = [key for key in required if key not in raw]
    if missing:
        raise ModelError(f"EMLE model file '{path}' lacks the keys {missing}")
    params = {key: raw[key] for key in required}
    params["sqrtk_ref"] = raw.get("sqrtk_ref")
    n_species = len(EMLE_ELEMENTS)
    if np.shape(params["n_ref"]) != (n_species,) or np.shape(params["ref_aev"])[0] != n_species:
        raise ModelError(f"EMLE model file '{path}' is not for the 5 species H C N O S")
    if int(raw.get("computer_n_species", AEV_SPECIES_SLOTS)) != AEV_SPECIES_SLOTS or \
            len(params["aev_mask"]) != 16 * AEV_SPECIES_SLOTS + 32 * AEV_SPECIES_SLOTS * (AEV_SPECIES_SLOTS + 1) // 2:
        raise ModelError(f"EMLE model file '{path}' needs an AEV layout other than ANI-2x's 7 species "
                         f"(aev_mask of length {len(params['aev_mask'])}); only the 1008-entry layout is supported")
    return params


def _gpr_coefficients(ref: np.ndarray, n_ref: np.ndarray, targets: np.ndarray):
    """``c_e = K_e^-1 (y_e - mean y_e)`` and ``mean y_e`` for every species, in float64."""
    n_species, max_ref = targets.shape
    coef = np.zeros((n_species, max_ref))
    mean = np.zeros(n_species)
    for e in range(n_species):
        n = int(n_ref[e])
        x = ref[e, :n].astype(np.float64)
        y = targets[e, :n].astype(np.float64)
        kernel = (x @ x.T) ** 2 + GPR_SIGMA ** 2 * np.eye(n)
        mean[e] = y.mean()
        coef[e, :n] = np.linalg.solve(kernel, y - mean[e])
    return coef, mean


def _ani2x_aev_computer():
    """torchani's AEV computer with the ANI-2x constants and 7 species slots.

    Kept behind this one function so that a leaner AEV module can replace it.  torchani
    stores the constants as float32 buffers (as the ANI-2x model emle-models were fitted
    with does); converting the module to float64 keeps those rounded values.
    """
    import os
    import warnings
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchani.aev import AEVComputer
    return AEVComputer.like_2x(num_species=AEV_SPECIES_SLOTS, strategy="pyaev")


class EMLE(torch.nn.Module):
    """The EMLE embedding energy as a TorchScript-compatible module.

    Parameters
    ----------
    params : dict
        From :func:`load_emle_parameters`.
    alpha_mode : {"species", "reference"}
        How polarisabilities are scaled (per species, or per atom from the GPR ``sqrt k``).
    method : {"electrostatic", "nonpol", "mm"}
        See the module docstring.
    dtype : torch.dtype
        float32 or float64.
    """

    alpha_mode: str
    method: str
    a_qeq: float
    a_thole: float
    n_ref: List[int]
    nm_to_bohr: float
    hartree_to_kj_mol: float
    supported_elements: List[int]

    def __init__(self, params: dict, alpha_mode: str = "species", method: str = "electrostatic",
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        if alpha_mode not in ALPHA_MODES:
            raise ModelError(f"EMLE alpha_mode must be one of {ALPHA_MODES}, not {alpha_mode!r}")
        if method not in EMLE_METHODS:
            raise ModelError(f"EMLE method must be one of {EMLE_METHODS}, not {method!r}")
        if alpha_mode == "reference" and params.get("sqrtk_ref") is None:
            raise ModelError("this EMLE model file has no sqrtk_ref: alpha_mode='reference' is not available")
        self.alpha_mode = alpha_mode
        self.method = method
        self.a_qeq = float(params["a_QEq"])
        self.a_thole = float(params["a_Thole"])
        self.nm_to_bohr = NM_TO_BOHR
        self.hartree_to_kj_mol = HARTREE_TO_KJ_MOL
        self.supported_elements = list(EMLE_ELEMENTS)
        self.aev = _ani2x_aev_computer().to(dtype)
        species_map = torch.full((max(EMLE_ELEMENTS) + 1,), -1, dtype=torch.int64)
        for index, z in enumerate(EMLE_ELEMENTS):
            species_map[z] = index
        self.register_buffer("species_map", species_map)
        mask = np.asarray(params["aev_mask"]).astype(bool)
        self.register_buffer("aev_index", torch.tensor(np.nonzero(mask)[0], dtype=torch.int64))
        ref = np.asarray(params["ref_aev"], dtype=np.float64)
        self.n_ref = [int(n) for n in params["n_ref"]]
        self.register_buffer("ref_features", torch.tensor(ref, dtype=dtype))  # (species, max_ref, features)
        targets = [params["s_ref"], params["chi_ref"],
                   params["sqrtk_ref"] if params.get("sqrtk_ref") is not None else np.ones_like(params["s_ref"])]
        coefs, means = zip(*(_gpr_coefficients(ref, params["n_ref"], np.asarray(t)) for t in targets))
        self.register_buffer("gpr_coef", torch.tensor(np.stack(coefs), dtype=dtype))  # (3, species, max_ref)
        self.register_buffer("gpr_mean", torch.tensor(np.stack(means), dtype=dtype))  # (3, species)
        self.register_buffer("q_core", torch.tensor(np.asarray(params["q_core"], dtype=np.float64), dtype=dtype))
        self.register_buffer("k_z", torch.tensor(np.asarray(params["k_Z"], dtype=np.float64), dtype=dtype))

    @torch.jit.export
    def species_ids(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """EMLE species ids (0..4) of ``atomic_numbers``; raises for unsupported elements."""
        z = atomic_numbers.to(torch.int64)
        known = (z >= 0) & (z < self.species_map.shape[0])
        ids = torch.where(known, self.species_map[torch.where(known, z, torch.zeros_like(z))],
                          torch.full_like(z, -1))
        if bool((ids < 0).any()):
            raise RuntimeError("EMLE: the ML region contains an element this model does not support "
                               "(supported: H C N O S)")
        return ids

    def _features(self, species: torch.Tensor, xyz_angstrom: torch.Tensor) -> torch.Tensor:
        aev = self.aev(species.unsqueeze(0), xyz_angstrom.unsqueeze(0))[0]
        aev = aev.index_select(1, self.aev_index)
        norm2 = (aev * aev).sum(1, keepdim=True)
        # an atom without neighbours has no features; keep it (and its gradient) finite: the GPR
        # then predicts the species mean
        return aev / torch.sqrt(torch.where(norm2 > 0, norm2, torch.ones_like(norm2)))

    def _gpr(self, species: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """GPR predictions (3, n): s (Bohr), chi (Hartree/e), sqrt(k)."""
        out = torch.zeros(3, species.shape[0], dtype=features.dtype, device=features.device)
        for e, n_ref in enumerate(self.n_ref):  # each atom against its own element's references only
            index = torch.nonzero(species == e).squeeze(1)
            if index.shape[0] == 0:
                continue
            similarity = features.index_select(0, index) @ self.ref_features[e, :n_ref].t()
            kernel = similarity * similarity  # (atoms of e, references of e)
            predicted = self.gpr_coef[:, e, :n_ref] @ kernel.t() + self.gpr_mean[:, e].unsqueeze(1)
            out = out.index_copy(1, index, predicted)
        return out

    def _qeq(self, xyz: torch.Tensor, s: torch.Tensor, chi: torch.Tensor, net_charge: torch.Tensor) -> torch.Tensor:
        n = xyz.shape[0]
        eye = torch.eye(n, dtype=xyz.dtype, device=xyz.device)
        diff = xyz.unsqueeze(1) - xyz.unsqueeze(0)
        r = torch.sqrt((diff * diff).sum(-1) + eye)  # the diagonal is set to 1 to keep gradients finite
        sg = self.a_qeq * s
        width = torch.sqrt(2.0 * (sg.unsqueeze(1) ** 2 + sg.unsqueeze(0) ** 2))
        off = torch.erf(r / width) / r
        a = torch.where(eye > 0, torch.diag(1.0 / (math.sqrt(math.pi) * sg)), off)
        ones = torch.ones(n, 1, dtype=xyz.dtype, device=xyz.device)
        zero = torch.zeros(1, 1, dtype=xyz.dtype, device=xyz.device)
        matrix = torch.cat([torch.cat([a, ones], 1), torch.cat([ones.t(), zero], 1)], 0)
        rhs = torch.cat([-chi, net_charge.reshape(1).to(xyz.dtype)])
        return torch.linalg.solve(matrix, rhs)[:n]

    def _alpha(self, species: torch.Tensor, s: torch.Tensor, q_val: torch.Tensor,
               sqrtk: torch.Tensor) -> torch.Tensor:
        alpha = self.k_z[species] * (-60.0 * q_val * s ** 3)
        if self.alpha_mode == "reference":
            alpha = alpha * sqrtk ** 2
        return alpha

    def _properties(self, species: torch.Tensor, xyz_nm: torch.Tensor, net_charge: torch.Tensor) -> torch.Tensor:
        """(4, n): s (Bohr), chi (Hartree/e), q (e), alpha (Bohr^3)."""
        features = self._features(species, xyz_nm * 10.0)
        predicted = self._gpr(species, features)
        s, chi, sqrtk = predicted[0], predicted[1], predicted[2]
        q = self._qeq(xyz_nm * self.nm_to_bohr, s, chi, net_charge)
        alpha = self._alpha(species, s, q - self.q_core[species], sqrtk)
        return torch.stack([s, chi, q, alpha])

    @torch.jit.export
    def atomic_properties(self, atomic_numbers: torch.Tensor, ml_positions: torch.Tensor,
                          net_charge: torch.Tensor) -> torch.Tensor:
        """Per-atom properties (4, n): valence width s (Bohr), electronegativity chi (Hartree/e),
        QEq charge q (e) and polarisability alpha (Bohr^3); positions in nm."""
        return self._properties(self.species_ids(atomic_numbers), ml_positions, net_charge)

    @torch.jit.export
    def energy_terms(self, species: torch.Tensor, ml_positions: torch.Tensor, mm_positions: torch.Tensor,
                     mm_charges: torch.Tensor, net_charge: torch.Tensor, ml_mm_charges: torch.Tensor,
                     coulomb_charges: torch.Tensor) -> torch.Tensor:
        """[E_static - E_Coulomb(coulomb_charges), E_induced] in kJ/mol.

        ``species`` are EMLE ids; positions in nm; ``ml_mm_charges`` are the region's MM
        charges (used by ``method="mm"`` only); ``coulomb_charges`` are point charges on the
        ML atoms whose plain Coulomb energy with ``mm_charges`` is subtracted inside the same
        pair sum (zeros: the bare static energy).  Computing the difference pair by pair keeps
        it accurate in float32 and makes it vanish exactly for ``method="mm"``.
        """
        xyz = ml_positions * self.nm_to_bohr
        mm_xyz = mm_positions * self.nm_to_bohr
        r = torch.cdist(xyz, mm_xyz, compute_mode="donot_use_mm_for_euclid_dist")  # (n, m), exact differences
        if self.method == "mm":
            static = (((ml_mm_charges - coulomb_charges).unsqueeze(1) / r) * mm_charges.unsqueeze(0)).sum()
            return torch.stack([static, torch.zeros_like(static)]) * self.hartree_to_kj_mol
        props = self._properties(species, ml_positions, net_charge)
        s, q, alpha = props[0], props[2], props[3]
        q_core = self.q_core[species]
        q_val = q - q_core
        s_col = s.unsqueeze(1)
        # q_core/R + q_val T0(R, s) written as q/R - q_val (1 + R/(2s)) exp(-R/s) / R: the same
        # function without the cancellation of the large core and valence terms (float32)
        penetration = (1.0 + r / (2.0 * s_col)) * torch.exp(-r / s_col) / r
        potential = (q - coulomb_charges).unsqueeze(1) / r - q_val.unsqueeze(1) * penetration
        static = (potential * mm_charges.unsqueeze(0)).sum()
        if self.method == "nonpol":
            return torch.stack([static, torch.zeros_like(static)]) * self.hartree_to_kj_mol
        induced = self._induced(xyz, mm_xyz, r, s, alpha, mm_charges)
        return torch.stack([static, induced]) * self.hartree_to_kj_mol

    def _induced(self, xyz: torch.Tensor, mm_xyz: torch.Tensor, r: torch.Tensor, s: torch.Tensor,
                 alpha: torch.Tensor, mm_charges: torch.Tensor) -> torch.Tensor:
        n = xyz.shape[0]
        # fields sum_a w_ia (x_i - X_a) as x_i sum_a w_ia - (w X)_i: no (n, m, 3) tensors
        w = mm_charges.unsqueeze(0) / (r * r * r)
        undamped = xyz * w.sum(1, keepdim=True) - w @ mm_xyz  # (n, 3)
        x = r / (2.0 * s.unsqueeze(1))
        w_damped = w * (1.0 - (1.0 + x + 0.5 * x * x) * torch.exp(-x))
        damped = xyz * w_damped.sum(1, keepdim=True) - w_damped @ mm_xyz
        # Thole-damped dipole interaction matrix (3n x 3n)
        eye = torch.eye(n, dtype=xyz.dtype, device=xyz.device)
        rij = xyz.unsqueeze(1) - xyz.unsqueeze(0)
        d2 = (rij * rij).sum(-1) + eye  # diagonal 1: finite gradients, masked below
        d = torch.sqrt(d2)
        d3 = d2 * d
        u = d3 / (self.a_thole * torch.sqrt(alpha.unsqueeze(1) * alpha.unsqueeze(0)))
        exp_u = torch.exp(-u)
        lambda3 = 1.0 - exp_u
        lambda5 = 1.0 - (1.0 + u) * exp_u
        eye3 = torch.eye(3, dtype=xyz.dtype, device=xyz.device)
        block = (lambda3 / d3).view(n, n, 1, 1) * eye3 \
            - (3.0 * lambda5 / (d3 * d2)).view(n, n, 1, 1) * rij.unsqueeze(-1) * rij.unsqueeze(-2)
        off_diagonal = (1.0 - eye).view(n, n, 1, 1)
        diagonal = eye.view(n, n, 1, 1) * (1.0 / alpha).view(n, 1, 1, 1) * eye3
        block = block * off_diagonal + diagonal
        matrix = block.permute(0, 2, 1, 3).reshape(3 * n, 3 * n)
        mu = torch.linalg.solve(matrix, damped.reshape(3 * n)).view(n, 3)
        return -0.5 * (mu * undamped).sum()

    def forward(self, atomic_numbers: torch.Tensor, ml_positions: torch.Tensor, mm_positions: torch.Tensor,
                mm_charges: torch.Tensor, net_charge: torch.Tensor,
                ml_mm_charges: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[E_static, E_induced] in kJ/mol; positions in nm, charges in e.

        ``ml_mm_charges`` (the region's MM charges) is needed by ``method="mm"`` only.
        """
        species = self.species_ids(atomic_numbers)
        zeros = torch.zeros(species.shape[0], dtype=ml_positions.dtype, device=ml_positions.device)
        if ml_mm_charges is None:
            if self.method == "mm":
                raise RuntimeError("EMLE method 'mm' needs the MM charges of the ML atoms (ml_mm_charges)")
            ml_mm_charges = zeros
        return self.energy_terms(species, ml_positions, mm_positions, mm_charges, net_charge, ml_mm_charges, zeros)


def _as_tensor(value, dtype, unit_name=None):
    if unit_name is not None:
        from openmm import unit
        if unit.is_quantity(value):
            value = value.value_in_unit(getattr(unit, unit_name))
    if isinstance(value, torch.Tensor):
        return value.to(dtype)
    return torch.as_tensor(np.asarray(value, dtype=np.float64 if dtype.is_floating_point else np.int64), dtype=dtype)


class EMLEModel:
    """An EMLE parameter file loaded as a TorchScript module.

    Parameters
    ----------
    path : str or Path
        emle-models ``.mat`` file (read at this path, never copied).
    alpha_mode : {"species", "reference"}
        Polarisability scaling.
    method : {"electrostatic", "nonpol", "mm"}
        Static + induced, static only, or the ML atoms' MM charges as point charges.
    precision : {"single", "double"}
        float32 or float64 evaluation (default ``"double"``).

    Calling the object, ``model(atomic_numbers, ml_positions, mm_positions, mm_charges,
    net_charge=0, ml_mm_charges=None)``, returns a tensor ``[E_static, E_induced]`` in kJ/mol
    (positions in nm or ``openmm.unit`` lengths, charges in e); it is differentiable with
    autograd with respect to position tensors that require grad.

    Attributes
    ----------
    module : torch.jit.ScriptModule
        The :class:`EMLE` module.
    supported_elements : list of int
        H C N O S.
    """

    def __init__(self, path, alpha_mode: str = "species", method: str = "electrostatic",
                 precision: str = "double"):
        check_precision(precision)
        self.path = str(path)
        self.alpha_mode = alpha_mode
        self.method = method
        self.precision = precision
        self.dtype = torch.float64 if precision == "double" else torch.float32
        self.module = torch.jit.script(EMLE(load_emle_parameters(path), alpha_mode, method, self.dtype))
        self.supported_elements = list(EMLE_ELEMENTS)

    def __repr__(self):
        return (f"EMLEModel({self.path!r}, alpha_mode={self.alpha_mode!r}, method={self.method!r}, "
                f"precision={self.precision!r})")

    def describe(self) -> dict:
        """JSON-serialisable settings."""
        return {"emle_model": self.path, "emle_alpha_mode": self.alpha_mode, "emle_method": self.method,
                "emle_precision": self.precision}

    def check_elements(self, atomic_numbers) -> None:
        """Raise :class:`ModelError` naming the elements the model does not support."""
        bad = sorted({int(z) for z in np.asarray(atomic_numbers).ravel()} - set(self.supported_elements))
        if bad:
            names = ", ".join(ELEMENT_SYMBOLS.get(z, f"Z={z}") for z in bad)
            raise ModelError(f"the ML region contains element(s) {names} that the EMLE model '{self.path}' does "
                             f"not support (supported: H C N O S)")

    def __call__(self, atomic_numbers, ml_positions, mm_positions, mm_charges, net_charge=0.0,
                 ml_mm_charges=None) -> torch.Tensor:
        z = _as_tensor(atomic_numbers, torch.int64)
        self.check_elements(z.tolist())
        if self.method == "mm" and ml_mm_charges is None:
            raise ModelError("EMLE method 'mm' needs the MM charges of the ML atoms (ml_mm_charges)")
        ml = _as_tensor(ml_positions, self.dtype, "nanometer").reshape(-1, 3)
        mm = _as_tensor(mm_positions, self.dtype, "nanometer").reshape(-1, 3)
        charges = _as_tensor(mm_charges, self.dtype, "elementary_charge").reshape(-1)
        if ml.shape[0] != z.shape[0] or charges.shape[0] != mm.shape[0]:
            raise ModelError(f"EMLE inputs disagree: {z.shape[0]} atomic numbers, {ml.shape[0]} ML positions, "
                             f"{mm.shape[0]} MM positions, {charges.shape[0]} MM charges")
        q_ml = None if ml_mm_charges is None else \
            _as_tensor(ml_mm_charges, self.dtype, "elementary_charge").reshape(-1)
        return self.module(z, ml, mm, charges, _as_tensor(net_charge, self.dtype), q_ml)

    def atomic_properties(self, atomic_numbers, ml_positions, net_charge=0.0) -> dict:
        """Per-atom ``s`` (Bohr), ``chi`` (Hartree/e), ``q`` (e, QEq) and ``alpha`` (Bohr^3), as tensors."""
        z = _as_tensor(atomic_numbers, torch.int64)
        self.check_elements(z.tolist())
        ml = _as_tensor(ml_positions, self.dtype, "nanometer").reshape(-1, 3)
        props = self.module.atomic_properties(z, ml, _as_tensor(net_charge, self.dtype))
        return dict(zip(("s", "chi", "q", "alpha"), props.unbind(0)))
