"""The EMLE TorchScript model against an independent NumPy implementation, and its physics.

Reference: tests/emle_numpy.py, written separately from the formulas in the parameter pack's
EQUATIONS.txt (emle-engine itself cannot be installed here and its reference numbers are not in
the pack), evaluated on emle-engine's alanine-dipeptide-in-water test inputs (22 ML atoms,
419 MM point charges).
"""
import numpy as np
import pytest
import torch

from helpers import requires_emle
from openmm_hybrid.testing import emle_model_path, emle_test_data
from openmm_hybrid.errors import InputFileError, ModelError

pytestmark = requires_emle



@pytest.fixture(scope="module")
def adp():
    data = emle_test_data()
    if not (data / "adp_xyz_qm.npy").is_file():
        pytest.skip(f"adp-in-water inputs not found in {data} (OPENMM_HYBRID_EMLE_TEST_DATA)")
    return {"z": np.load(data / "adp_atomic_numbers.npy"), "xyz_qm": np.load(data / "adp_xyz_qm.npy"),
            "xyz_mm": np.load(data / "adp_xyz_mm.npy"), "charges": np.load(data / "adp_charges_mm.npy")}


@pytest.fixture(scope="module")
def params():
    import emle_numpy
    return emle_numpy.load(emle_model_path())


@pytest.fixture(scope="module")
def models():
    from openmm_hybrid.models.emle import EMLEModel
    cache = {}

    def get(alpha_mode="species", method="electrostatic", precision="double"):
        key = (alpha_mode, method, precision)
        if key not in cache:
            cache[key] = EMLEModel(emle_model_path(), alpha_mode=alpha_mode, method=method, precision=precision)
        return cache[key]
    return get


@pytest.fixture(scope="module")
def numpy_reference(adp, params):
    import emle_numpy
    return {mode: emle_numpy.energies(params, adp["z"], adp["xyz_qm"], adp["xyz_mm"], adp["charges"],
                                      alpha_mode=mode) for mode in ("species", "reference")}


def _kjmol(hartree):
    from openmm_hybrid.models.emle import HARTREE_TO_KJ_MOL
    return np.asarray(hartree) * HARTREE_TO_KJ_MOL


def _call(model, adp, **kw):
    return model(adp["z"], adp["xyz_qm"] / 10, adp["xyz_mm"] / 10, adp["charges"], **kw)


@pytest.mark.parametrize("alpha_mode", ["species", "reference"])
def test_energies_match_numpy_reference(models, adp, numpy_reference, alpha_mode):
    static, induced = _call(models(alpha_mode), adp).tolist()
    ref_static, ref_induced = _kjmol(numpy_reference[alpha_mode])
    print(f"\n{alpha_mode}: E_static {static:.6f} (NumPy {ref_static:.6f}), E_induced {induced:.6f} "
          f"(NumPy {ref_induced:.6f}) kJ/mol")
    assert abs(static) > 50 and abs(induced) > 5  # adp in water: about -123 and -22 kJ/mol
    assert static == pytest.approx(ref_static, rel=1e-9, abs=1e-9)
    assert induced == pytest.approx(ref_induced, rel=1e-9, abs=1e-9)
    if alpha_mode == "reference":  # the sqrt(k) scaling really changes the induced energy
        assert abs(induced - _kjmol(numpy_reference["species"][1])) > 0.5


@pytest.mark.parametrize("alpha_mode, net_charge", [("species", 0), ("reference", 0), ("species", 1)])
def test_atomic_properties_match_numpy_reference(models, params, adp, alpha_mode, net_charge):
    """GPR (s, chi), QEq charges (with the net-charge constraint) and polarisabilities."""
    import emle_numpy
    ref = emle_numpy.properties(params, adp["z"], adp["xyz_qm"], net_charge=net_charge, alpha_mode=alpha_mode)
    ours = models(alpha_mode).atomic_properties(adp["z"], adp["xyz_qm"] / 10, net_charge)
    for key in ("s", "chi", "q", "alpha"):
        np.testing.assert_allclose(ours[key].numpy(), ref[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert float(ours["q"].sum()) == pytest.approx(net_charge, abs=1e-10)
    assert (ours["alpha"].numpy() > 0).all()


def test_float32_close_to_float64(models, adp):
    e64 = _call(models(), adp).numpy()
    e32 = _call(models(precision="single"), adp)
    assert e32.dtype == torch.float32
    np.testing.assert_allclose(e32.numpy(), e64, rtol=1e-4)


@pytest.mark.parametrize("which", ["ml", "mm"])
def test_autograd_forces_match_finite_differences(models, adp, which):
    model = models()
    ml = torch.tensor(adp["xyz_qm"] / 10, requires_grad=True)
    mm = torch.tensor(adp["xyz_mm"] / 10, requires_grad=True)
    energy = model(adp["z"], ml, mm, adp["charges"]).sum()
    grad = torch.autograd.grad(energy, ml if which == "ml" else mm)[0].numpy()
    rng = np.random.default_rng(0)
    if which == "ml":
        picks = [(i, k) for i in (4, 15) for k in range(3)]  # a carbon and an oxygen
    else:  # the MM atoms nearest the solute carry the largest gradients
        near = np.argsort(np.linalg.norm(adp["xyz_mm"][:, None] - adp["xyz_qm"][None], axis=-1).min(1))[:3]
        picks = [(int(a), int(rng.integers(3))) for a in near]
    h = 1e-5
    for atom, k in picks:
        values = []
        for sign in (1, -1):
            x_ml, x_mm = adp["xyz_qm"] / 10, adp["xyz_mm"] / 10
            x = (x_ml if which == "ml" else x_mm).copy()
            x[atom, k] += sign * h
            args = (x, x_mm) if which == "ml" else (x_ml, x)
            values.append(float(model(adp["z"], *args, adp["charges"]).sum()))
        fd = (values[0] - values[1]) / (2 * h)
        assert grad[atom, k] == pytest.approx(fd, rel=1e-6, abs=1e-5), (which, atom, k)


def test_rotation_translation_invariance(models, adp):
    model = models()
    reference = _call(model, adp).numpy()
    rotation = torch.linalg.qr(torch.tensor(np.random.default_rng(3).normal(size=(3, 3))))[0].numpy()
    shift = np.array([0.7, -1.3, 2.1])
    moved = {**adp, "xyz_qm": adp["xyz_qm"] @ rotation.T + shift, "xyz_mm": adp["xyz_mm"] @ rotation.T + shift}
    np.testing.assert_allclose(_call(model, moved).numpy(), reference, rtol=1e-10, atol=1e-9)


def test_atom_order_invariance(models, adp):
    model = models()
    reference = _call(model, adp).numpy()
    rng = np.random.default_rng(7)
    p_ml, p_mm = rng.permutation(len(adp["z"])), rng.permutation(len(adp["charges"]))
    shuffled = {"z": adp["z"][p_ml], "xyz_qm": adp["xyz_qm"][p_ml], "xyz_mm": adp["xyz_mm"][p_mm],
                "charges": adp["charges"][p_mm]}
    np.testing.assert_allclose(_call(model, shuffled).numpy(), reference, rtol=1e-10, atol=1e-9)


def test_methods(models, adp, numpy_reference):
    """nonpol = the static energy alone; mm = plain Coulomb of given ML-atom charges; no MM = zero."""
    static, _ = _call(models(), adp).tolist()
    nonpol_static, nonpol_induced = _call(models(method="nonpol"), adp).tolist()
    assert nonpol_static == pytest.approx(static, rel=1e-12) and nonpol_induced == 0.0
    q_ml = np.random.default_rng(1).normal(scale=0.3, size=len(adp["z"]))
    mm_static, mm_induced = _call(models(method="mm"), adp, ml_mm_charges=q_ml).tolist()
    r_bohr = np.linalg.norm(adp["xyz_qm"][:, None] - adp["xyz_mm"][None], axis=-1) * 1.8897261258369282
    coulomb = float(_kjmol((q_ml[:, None] * adp["charges"][None] / r_bohr).sum()))
    assert mm_static == pytest.approx(coulomb, rel=1e-12) and mm_induced == 0.0
    with pytest.raises(ModelError, match="ml_mm_charges"):
        _call(models(method="mm"), adp)
    empty = models()(adp["z"], adp["xyz_qm"] / 10, np.zeros((0, 3)), np.zeros(0))
    assert empty.tolist() == [0.0, 0.0]


def test_refusals(models, adp, tmp_path):
    from openmm_hybrid.models.emle import EMLEModel
    z = adp["z"].copy()
    z[0] = 9
    with pytest.raises(ModelError, match=r"element\(s\) F .*supported: H C N O S"):
        models()(z, adp["xyz_qm"] / 10, adp["xyz_mm"] / 10, adp["charges"])
    with pytest.raises(ModelError, match="alpha_mode"):
        EMLEModel(emle_model_path(), alpha_mode="atomic")
    with pytest.raises(ModelError, match="method"):
        EMLEModel(emle_model_path(), method="mechanical")
    with pytest.raises(InputFileError, match="does not exist"):
        EMLEModel(tmp_path / "missing.mat")
    bad = tmp_path / "bad.mat"
    bad.write_text("not a mat file")
    with pytest.raises(ModelError, match="not an EMLE"):
        EMLEModel(bad)
    with pytest.raises(ModelError, match="disagree"):
        models()(adp["z"][:-1], adp["xyz_qm"] / 10, adp["xyz_mm"] / 10, adp["charges"])


def test_public_export():
    import openmm_hybrid
    from openmm_hybrid.models.emle import EMLEModel
    assert openmm_hybrid.EMLEModel is EMLEModel
