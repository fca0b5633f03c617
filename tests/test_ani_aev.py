"""The ANI-2x AEV module (openmm_hybrid.models.aev) against torchani's own AEVComputer.

torchani 2.9's ``AEVComputer.like_2x()`` is the independent reference: it builds its
neighbour list and triples its own way.  These tests need torchani but not the ANI-2x
weights.
"""
import numpy as np
import pytest
import torch

from openmm_hybrid.models.aev import ANIAEV, ani2x_species_slots

SMILES = {
    "p-xylene": "Cc1ccc(C)cc1",                                  # H, C only: 128 features
    "sulfonamide": "CS(=O)(=O)Nc1ccc(N)cc1",                    # H C N O S
    "chloro-fluoro aromatic": "Fc1ccc(Cl)c(F)c1C(Cl)(F)F",       # H C F Cl
    "all seven elements": "O=C(Nc1ccc(cc1)S(=O)(=O)N)c1ccc(Cl)cc1F",
}


def conformer(smiles, seed=11):
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    return [a.GetAtomicNum() for a in mol.GetAtoms()], mol.GetConformer().GetPositions()  # angstrom


@pytest.fixture(scope="module")
def reference():
    import torchani
    return torchani.AEVComputer.like_2x().double()


def torchani_aev(reference, species, xyz):
    return reference(torch.tensor([species]), torch.tensor(xyz, dtype=torch.float64).unsqueeze(0))[0]


def cutoff_edge_geometry():
    """Atoms at distances just inside and just outside both cutoffs (3.5 and 5.1 angstrom)
    from atom 0, plus a close neighbour, so that angular triples and radial pairs switch on
    and off around the cutoffs."""
    eps = 1e-4
    directions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0.6, 0.8, 0]])
    radii = [1.1, 3.5 - eps, 3.5 + eps, 5.1 - eps, 5.1 + eps, 3.5 - 2 * eps]
    xyz = np.vstack([[0.0, 0.0, 0.0], directions * np.array(radii)[:, None]])
    z = [6, 1, 8, 7, 16, 17, 9]
    return z, xyz


@pytest.mark.parametrize("name", list(SMILES) + ["cutoff edges"])
def test_pruned_aev_matches_torchani(name, reference):
    """Every feature of the pruned layout equals torchani's column; every dropped column is 0."""
    z, xyz = cutoff_edge_geometry() if name == "cutoff edges" else conformer(SMILES[name])
    species = ani2x_species_slots(z)
    full = torchani_aev(reference, species, xyz)
    module = torch.jit.script(ANIAEV(species, dtype=torch.float64))
    aev = module(torch.tensor(xyz))
    assert aev.shape == (len(z), module.out_dim)
    present = sorted(set(species))
    assert module.out_dim == 16 * len(present) + 32 * len(present) * (len(present) + 1) // 2
    assert torch.abs(aev - full[:, module.feature_index]).max() < 1e-12
    dropped = torch.ones(1008, dtype=torch.bool)
    dropped[module.feature_index] = False
    assert torch.all(full[:, dropped] == 0.0)
    assert torch.abs(full).max() > 0.1  # a meaningful comparison


def test_full_layout_and_emle_layout(reference):
    """species_slots=range(7) reproduces torchani's 1008-feature layout column for column;
    the 5-slot layout EMLE uses (H C N O S) is the matching subsequence."""
    z, xyz = conformer(SMILES["sulfonamide"])
    species = ani2x_species_slots(z)
    full = torchani_aev(reference, species, xyz)
    seven = ANIAEV(species, species_slots=range(7), dtype=torch.float64)
    assert seven.out_dim == 1008
    assert torch.equal(seven.feature_index, torch.arange(1008))
    assert torch.abs(seven(torch.tensor(xyz)) - full).max() < 1e-12
    five = ANIAEV(species, species_slots=range(5), dtype=torch.float64)
    assert five.out_dim == 5 * 16 + 15 * 32
    assert torch.abs(five(torch.tensor(xyz)) - full[:, five.feature_index]).max() < 1e-12


@pytest.mark.parametrize("name", ["all seven elements", "cutoff edges"])
def test_aev_gradients_match_torchani(name, reference):
    """d(w . AEV)/dx for a random projection w, against torchani's autograd."""
    z, xyz = cutoff_edge_geometry() if name == "cutoff edges" else conformer(SMILES[name])
    species = ani2x_species_slots(z)
    module = ANIAEV(species, dtype=torch.float64)
    weights = torch.tensor(np.random.default_rng(0).normal(size=(len(z), module.out_dim)))
    x = torch.tensor(xyz, requires_grad=True)
    (grad,) = torch.autograd.grad((module(x) * weights).sum(), x)
    x_ref = torch.tensor(xyz, requires_grad=True)
    full = reference(torch.tensor([species]), x_ref.unsqueeze(0))[0]
    (grad_ref,) = torch.autograd.grad((full[:, module.feature_index] * weights).sum(), x_ref)
    assert torch.abs(grad - grad_ref).max() < 1e-10
    assert torch.abs(grad_ref).max() > 1e-3


def test_float32_agrees_with_float64(reference):
    z, xyz = conformer(SMILES["all seven elements"])
    species = ani2x_species_slots(z)
    single = torch.jit.script(ANIAEV(species, dtype=torch.float32))(torch.tensor(xyz, dtype=torch.float32))
    double = ANIAEV(species, dtype=torch.float64)(torch.tensor(xyz))
    assert single.dtype == torch.float32
    assert torch.abs(single.double() - double).max() < 1e-5


def test_small_molecules_and_isolated_atoms(reference):
    """One atom, two atoms (no angular triples) and atoms beyond every cutoff give zeros
    where torchani does."""
    for z, xyz in [([8], [[0.0, 0.0, 0.0]]),
                   ([1, 8], [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0]]),
                   ([1, 8, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 9.0], [0.0, 0.0, 18.0]])]:
        species = ani2x_species_slots(z)
        module = ANIAEV(species, dtype=torch.float64)
        aev = module(torch.tensor(xyz, dtype=torch.float64))
        full = torchani_aev(reference, species, xyz)
        assert torch.abs(aev - full[:, module.feature_index]).max() < 1e-12


def test_invalid_input_is_refused():
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[11\] have no ANI-2x species slot"):
        ani2x_species_slots([6, 11])
    with pytest.raises(ValueError, match=r"species slot\(s\) \[6\] of the molecule are not in species_slots"):
        ANIAEV([0, 1, 6], species_slots=[0, 1, 2])
    with pytest.raises(ValueError, match="must lie in 0..6"):
        ANIAEV([0, 7])
    with pytest.raises(ValueError, match="increasing"):
        ANIAEV([0, 1], species_slots=[1, 0])
