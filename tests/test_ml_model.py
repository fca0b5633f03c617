"""The TorchScript ML model wrapper: reference values, invariances, contract, refusals."""
from typing import List

import numpy as np
import pytest
import torch

from helpers import requires_ani
from openmm_hybrid.errors import InputFileError, ModelError
from openmm_hybrid.forces import create_region_module
from openmm_hybrid.models import load_model

HARTREE = 2625.4996387552483  # kJ/mol per hartree: torchani.units.hartree2kjoulemol (checked below)

# torchani's README methane (angstrom) and the shared/README.md check value (hartree)
METHANE_Z = [6, 1, 1, 1, 1]
METHANE_XYZ = np.array([[0.03192167, 0.00638559, 0.01301679], [-0.83140486, 0.39370209, -0.26395324],
                        [-0.66518241, -0.84461308, 0.20759389], [0.45554739, 0.54289633, 0.81170881],
                        [0.66091919, -0.16799635, -0.91037834]]) / 10.0
METHANE_HARTREE = -40.45979309


def pxylene():
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.AddHs(Chem.MolFromSmiles("Cc1ccc(C)cc1"))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    AllChem.MMFFOptimizeMolecule(mol)
    z = [a.GetAtomicNum() for a in mol.GetAtoms()]
    return z, mol.GetConformer().GetPositions() / 10.0  # nm


def energy_forces(module, positions, box=None, dtype=torch.float64):
    x = torch.tensor(positions, dtype=dtype, requires_grad=True)
    b = None if box is None else torch.tensor(box, dtype=dtype)
    e = module(x, b) if b is not None else module(x)
    (g,) = torch.autograd.grad(e, x)
    return float(e.detach()), -g.numpy()


def random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@requires_ani
@pytest.mark.parametrize("precision", ["single", "double"])
def test_methane_check_value(precision, ani_single, ani_double):
    model = ani_single if precision == "single" else ani_double
    module = create_region_module(model, range(5), METHANE_Z)
    e, _ = energy_forces(module, METHANE_XYZ, dtype=torch.float64)
    assert e / HARTREE == pytest.approx(METHANE_HARTREE, abs=3e-6)


@requires_ani
def test_matches_torchani_energy_and_forces(ani_double, torchani_double):
    """Independent reference: torchani's own eager ensemble (not the batched form we compile)."""
    import torchani
    assert torchani.units.hartree2kjoulemol(1.0) == pytest.approx(HARTREE, rel=1e-12)
    z, xyz = pxylene()
    e_ref, f_ref = torchani_energy_forces(torchani_double, z, xyz)
    module = create_region_module(ani_double, range(len(z)), z)
    e, f = energy_forces(module, xyz)
    assert e == pytest.approx(e_ref, abs=1e-6)
    assert np.abs(f - f_ref).max() < 1e-6
    assert np.abs(f).max() > 10.0  # a meaningful comparison: not a minimum with vanishing forces


# Molecules with the other ANI-2x elements (RDKit conformers from SMILES)
OTHER_MOLECULES = {
    "sulfonamide": "CS(=O)(=O)Nc1ccc(N)cc1",
    "chloro-fluoro aromatic": "Fc1ccc(Cl)c(F)c1C(Cl)(F)F",
    "glibenclamide (61 atoms)": "COc1ccc(Cl)cc1C(=O)NCCc1ccc(cc1)S(=O)(=O)NC(=O)NC1CCCCC1",
}


def conformer(smiles, seed=5):
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return [a.GetAtomicNum() for a in mol.GetAtoms()], mol.GetConformer().GetPositions() / 10.0  # nm


def two_molecules_at_cutoffs():
    """Methanethiol and chloro-fluoro-methane placed so that intermolecular distances sit
    1e-4 angstrom inside and outside the angular (3.5) and radial (5.1) cutoffs."""
    z1, x1 = conformer("CS")
    z2, x2 = conformer("FC(F)Cl")
    x1 = (x1 - x1[0]) * 10.0  # angstrom, carbon at the origin
    x2 = (x2 - x2[1]) * 10.0  # angstrom, carbon at the origin
    axis = np.array([1.0, 0.0, 0.0])
    # closest pair along the axis: first molecule's atom with the largest x, second's smallest x
    gap_inside = x1[:, 0].max() - x2[:, 0].min()
    placed = []
    for target in (3.5 - 1e-4, 5.1 + 1e-4):
        placed.append(x2 + (gap_inside + target) * axis)
    z = z1 + z2 + z2
    xyz = np.vstack([x1, placed[0], placed[1] + np.array([0.0, 9.0, 0.0])])
    return z, xyz / 10.0


@pytest.fixture(scope="module")
def torchani_double():
    from openmm_hybrid.models.ani import load_torchani_ani2x
    return load_torchani_ani2x().double()


def torchani_energy_forces(reference, z, xyz):
    """Energy (kJ/mol) and forces (kJ/mol/nm) from torchani's eager model, float64."""
    coords = torch.tensor(xyz * 10.0, requires_grad=True)
    energy = reference((torch.tensor([z]), coords.unsqueeze(0))).energies[0]
    (grad,) = torch.autograd.grad(energy, coords)
    return float(energy.detach()) * HARTREE, -grad.numpy() * HARTREE * 10.0


@requires_ani
@pytest.mark.parametrize("name", list(OTHER_MOLECULES) + ["two molecules at the cutoffs"])
def test_matches_torchani_other_elements(name, ani_double, ani_single, torchani_double):
    """N, O, S, F, Cl; a 61-atom drug; pairs just inside/outside the cutoffs: energy and
    forces equal torchani's eager ensemble (float64), float32 within its precision."""
    if name in OTHER_MOLECULES:
        z, xyz = conformer(OTHER_MOLECULES[name])
        xyz = xyz + np.random.default_rng(2).normal(scale=0.003, size=xyz.shape)
    else:
        z, xyz = two_molecules_at_cutoffs()
    e_ref, f_ref = torchani_energy_forces(torchani_double, z, xyz)
    e, f = energy_forces(create_region_module(ani_double, range(len(z)), z), xyz)
    assert e == pytest.approx(e_ref, abs=1e-6)
    assert np.abs(f - f_ref).max() < 1e-6
    assert np.abs(f).max() > 10.0
    e32, f32 = energy_forces(create_region_module(ani_single, range(len(z)), z), xyz, dtype=torch.float32)
    assert e32 == pytest.approx(e_ref, abs=0.02)
    assert np.abs(f32 - f_ref).max() < 0.05


@requires_ani
def test_single_network_model_index():
    """model_index selects one network of the ensemble, as torchani's ANI2x(model_index=...)."""
    from openmm_hybrid.models.ani import load_torchani_ani2x
    z, xyz = conformer(OTHER_MOLECULES["sulfonamide"])
    model = load_model("ani2x", precision="double", model_index=3)
    assert "network 3" in model.description
    e_ref, f_ref = torchani_energy_forces(load_torchani_ani2x(model_index=3).double(), z, xyz)
    e, f = energy_forces(create_region_module(model, range(len(z)), z), xyz)
    assert e == pytest.approx(e_ref, abs=1e-6)
    assert np.abs(f - f_ref).max() < 1e-6
    with pytest.raises(ModelError, match="between 0 and 7"):
        load_model("ani2x", model_index=8)


@requires_ani
def test_region_model_holds_only_what_the_region_needs(ani_single):
    """The stored TorchScript keeps the networks of the region's elements only, with first
    layers cut to the non-zero AEV features (H and C: 128 of 1008)."""
    import io
    z, _ = pxylene()
    region = ani_single.module.specialize(z)
    assert region.aev.out_dim == 128
    assert [int(n.atoms.numel()) for n in region.networks] == [10, 8]  # H, C
    assert [tuple(n.first_weight.shape) for n in region.networks] == [(128, 8 * 256), (128, 8 * 224)]
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(region), buffer)
    parameters = sum(b.numel() for b in region.buffers())
    assert parameters < 2.0e6  # the two full 1008-input ensembles hold 5.1e6
    assert len(buffer.getvalue()) < 4 * parameters + 1e6  # float32 values, nothing else of size
    with pytest.raises((RuntimeError, torch.jit.Error), match="atomic_numbers differ"):
        torch.jit.script(region)(torch.tensor([6] * 18), torch.zeros((18, 3)), torch.tensor(0.0))
    with pytest.raises(ModelError, match="no ANI-2x species slot"):
        ani_single.module.specialize([6, 1, 11])


@requires_ani
def test_finite_difference_forces(ani_double):
    z, xyz = pxylene()
    xyz = xyz + np.random.default_rng(3).normal(scale=0.005, size=xyz.shape)
    module = create_region_module(ani_double, range(len(z)), z)
    _, f = energy_forces(module, xyz)
    h = 1e-5
    for atom, k in [(0, 0), (3, 1), (9, 2), (17, 0)]:
        plus, minus = xyz.copy(), xyz.copy()
        plus[atom, k] += h
        minus[atom, k] -= h
        fd = -(energy_forces(module, plus)[0] - energy_forces(module, minus)[0]) / (2 * h)
        assert f[atom, k] == pytest.approx(fd, abs=1e-3 + 1e-5 * abs(fd))


@requires_ani
@pytest.mark.parametrize("precision", ["single", "double"])
def test_rotation_translation_invariance(precision, ani_single, ani_double):
    model = ani_single if precision == "single" else ani_double
    tol_e, tol_f = (0.05, 0.5) if precision == "single" else (1e-6, 1e-5)
    z, xyz = pxylene()
    module = create_region_module(model, range(len(z)), z)
    e0, f0 = energy_forces(module, xyz)
    for seed in range(3):
        rot = random_rotation(seed)
        shift = np.random.default_rng(seed + 10).uniform(-5, 5, size=3)
        e1, f1 = energy_forces(module, xyz @ rot.T + shift)
        assert e1 == pytest.approx(e0, abs=tol_e)
        assert np.abs(f1 - f0 @ rot.T).max() < tol_f


@requires_ani
def test_ml_atom_order_invariance(ani_double):
    """Reordering the region (and the model's input) leaves energy and per-atom forces unchanged."""
    z, xyz = pxylene()
    n = len(z)
    # the region sits inside a larger "system": 5 dummy atoms first
    system_xyz = np.vstack([np.random.default_rng(0).uniform(2, 3, size=(5, 3)), xyz])
    atoms = list(range(5, 5 + n))
    e0, f0 = energy_forces(create_region_module(ani_double, atoms, z), system_xyz)
    perm = np.random.default_rng(1).permutation(n)
    e1, f1 = energy_forces(create_region_module(ani_double, [atoms[i] for i in perm], [z[i] for i in perm]),
                           system_xyz)
    assert e1 == pytest.approx(e0, abs=1e-6)
    assert np.abs(f1 - f0).max() < 1e-6
    assert np.abs(f0[:5]).max() == 0.0  # atoms outside the region feel nothing


@requires_ani
def test_periodic_region_made_whole(ani_double):
    """A region split across the periodic boundary gives the same energy as a whole one."""
    z, xyz = pxylene()
    box = np.diag([2.5, 2.7, 2.9])
    xyz = xyz - xyz.mean(axis=0) + np.array([0.05, 1.3, 1.4])  # straddles the x = 0 face
    wrapped = xyz - np.floor(xyz / np.diag(box)) * np.diag(box)
    assert not np.allclose(wrapped, xyz)
    module = create_region_module(ani_double, range(len(z)), z, periodic=True)
    e0, f0 = energy_forces(module, xyz, box)
    e1, f1 = energy_forces(module, wrapped, box)
    assert e1 == pytest.approx(e0, abs=1e-6)
    assert np.abs(f1 - f0).max() < 1e-6


@requires_ani
def test_model_refuses_unsupported_elements_and_charge(ani_single):
    with pytest.raises(ModelError, match=r"element\(s\) Na.*does not support"):
        ani_single.check_region([6, 1, 11], 0)
    with pytest.raises(ModelError, match=r"net charge -1.*neutral"):
        ani_single.check_region([6, 1, 8], -1)
    ani_single.check_region([6, 1, 7, 8, 9, 16, 17], 0)


class HarmonicChain(torch.nn.Module):
    """A tiny 'ML model' with a known formula: harmonic springs along the atom chain."""

    supported_elements: List[int]

    def __init__(self):
        super().__init__()
        self.k = 1000.0  # kJ/mol/nm^2
        self.r0 = 0.15  # nm
        self.supported_elements = [1, 6, 8]

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        d = positions[1:] - positions[:-1]
        r = torch.sqrt((d * d).sum(-1))
        return 0.5 * self.k * ((r - self.r0) ** 2).sum()


def _write_harmonic(tmp_path):
    path = tmp_path / "harmonic.pt"
    torch.jit.save(torch.jit.script(HarmonicChain()), str(path))
    return path


def test_user_torchscript_model_matches_numpy(tmp_path):
    model = load_model(str(_write_harmonic(tmp_path)), precision="double")
    assert model.supported_elements == [1, 6, 8] and not model.supports_charge
    xyz = np.array([[0.0, 0.0, 0.0], [0.17, 0.0, 0.0], [0.17, 0.12, 0.05]])
    e, f = energy_forces(create_region_module(model, range(3), [6, 6, 8]), xyz)
    r = np.linalg.norm(np.diff(xyz, axis=0), axis=1)
    assert e == pytest.approx(0.5 * 1000.0 * ((r - 0.15) ** 2).sum(), rel=1e-12)
    # analytic forces of the harmonic chain
    expected = np.zeros_like(xyz)
    for i in range(2):
        d = xyz[i + 1] - xyz[i]
        g = 1000.0 * (r[i] - 0.15) * d / r[i]
        expected[i] += g
        expected[i + 1] -= g
    assert np.abs(f - expected).max() < 1e-9
    with pytest.raises(ModelError, match="element"):
        model.check_region([6, 17], 0)


def test_user_model_contract_errors(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_model(str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="not a TorchScript model"):
        load_model(str(bad))

    class WrongSignature(torch.nn.Module):
        def forward(self, positions: torch.Tensor) -> torch.Tensor:
            return positions.sum()

    wrong = tmp_path / "wrong.pt"
    torch.jit.save(torch.jit.script(WrongSignature()), str(wrong))
    with pytest.raises(ModelError, match="does not follow the contract"):
        load_model(str(wrong))
    with pytest.raises(ModelError, match="unknown model 'ani3x'"):
        load_model("ani3x")
