"""The adapters of published model families: AIMNet2, MACE, TorchMD-Net (TensorNet / AceFF),
NequIP and Allegro.

Each family is tested on a small randomly initialised instance of its real architecture, built
with the family's own package and saved in the format its users get (openmm_hybrid.testing:
AIMNet2 ``.pt`` through ``aimnet export``, MACE ``.model``, TorchMD-Net ``.ckpt``, NequIP and
Allegro through ``nequip-deploy build`` with nequip 0.6, and, where nequip >= 0.7 is installed,
through ``nequip-compile --mode torchscript``), loaded
through the public route (``load_model(path)``; ``load_model(NAME)`` with
``OPENMM_HYBRID_MODEL_DIR``), and compared with the package's own evaluation.  A family whose
package is not installed is skipped with the reason.

Tolerances.  float64: the adapters run the same arithmetic as the package in another order
(all-pairs graphs, traced graphs), so energies agree to a few hundred float64 roundings of the
largest term: 1e-11 relative to the largest magnitude involved.  float32: eps = 1.2e-7, and a
sum of a few hundred terms of similar size loses up to ~1e-5 of the largest one; energies are
compared to 1e-5 of the largest magnitude, forces to 1e-4 of the largest force component.
"""
import contextlib
import os
import warnings
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

import numpy as np
import pytest
import torch

from openmm_hybrid.errors import ModelError
from openmm_hybrid.forces.ml_force import create_region_module
from openmm_hybrid.models import describe_model, load_model
from openmm_hybrid.models.model_files import EV_TO_KJ_PER_MOL, MODEL_DIR_VARIABLE

# (name, SMILES, net charge): a neutral molecule with Br, a carboxylate and an amidinium
MOLECULES = [("bromoethanol", "OCCBr", 0), ("acetate", "CC(=O)[O-]", -1), ("acetamidinium", "CC(N)=[NH2+]", 1)]


def molecule(smiles):
    """Atomic numbers and coordinates (nm) of a molecule with hydrogens (RDKit ETKDG, fixed seed)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    z = [a.GetAtomicNum() for a in mol.GetAtoms()]
    xyz = mol.GetConformer().GetPositions() / 10.0
    return z, xyz


# --- the package's own evaluations (energy kJ/mol, forces kJ/mol/nm) -----------------------------

def aimnet2_reference(path, z, xyz, charge, dtype):
    """float32: aimnet's calculator (its neighbour lists, D3 through its Warp kernel).  float64:
    the calculator's model and long-range modules called eagerly with float64 inputs, D3 through
    aimnet's PyTorch implementation (its Warp D3 kernel computes in float32 whatever the input)."""
    from aimnet.calculators import AIMNet2Calculator

    from openmm_hybrid.models.aimnet2 import use_input_dtype
    calc = AIMNet2Calculator(str(path), device="cpu")
    if dtype == torch.float32:
        out = calc({"coord": torch.tensor(xyz * 10.0, dtype=dtype), "numbers": torch.tensor(z),
                    "charge": torch.tensor([float(charge)])}, forces=True)
        return float(out["energy"]) * EV_TO_KJ_PER_MOL, out["forces"].double().numpy() * EV_TO_KJ_PER_MOL * 10.0
    model = calc.model.double()
    use_input_dtype(model, torch.float64)
    coord = torch.tensor(xyz * 10.0, dtype=dtype).unsqueeze(0).requires_grad_()
    data = model({"coord": coord, "numbers": torch.tensor([z]), "charge": torch.tensor([float(charge)], dtype=dtype)})
    data = calc.external_coulomb.double()(data)
    data = calc.external_dftd3.double()(data, hessian=True)
    energy = data["energy"].sum()
    grad = torch.autograd.grad(energy, coord)[0][0]
    return float(energy.detach()) * EV_TO_KJ_PER_MOL, -grad.numpy() * EV_TO_KJ_PER_MOL * 10.0


def mace_reference(path, z, xyz, charge, dtype):
    """mace's ASE calculator (total energy)."""
    from ase import Atoms
    from mace.calculators import MACECalculator
    calc = MACECalculator(model_paths=str(path), device="cpu",
                          default_dtype="float64" if dtype == torch.float64 else "float32")
    atoms = Atoms(numbers=z, positions=xyz * 10.0)
    atoms.calc = calc
    return atoms.get_potential_energy() * EV_TO_KJ_PER_MOL, atoms.get_forces() * EV_TO_KJ_PER_MOL * 10.0


def tensornet_reference(path, z, xyz, charge, dtype):
    """torchmd-net's own model called eagerly, forces by its derivative.  float32: its default
    path (Warp neighbour list and TensorNet kernels); float64: its pure-PyTorch TensorNet path
    (the Warp kernels compute in float32 whatever the input) with its own neighbour list."""
    from torchmdnet.models.model import load_model as tmn_load

    from openmm_hybrid.models.torchmdnet import pure_torch_tensornet
    model = tmn_load(str(path), derivative=True, remove_ref_energy=True, static_shapes=False).to(dtype)
    with pure_torch_tensornet(model) if dtype == torch.float64 else contextlib.nullcontext():
        energy, neg_dy = model(torch.tensor(z), torch.tensor(xyz * 10.0, dtype=dtype),
                               q=torch.tensor([float(charge)], dtype=dtype))
    return float(energy.sum()) * EV_TO_KJ_PER_MOL, neg_dy.detach().double().numpy() * EV_TO_KJ_PER_MOL * 10.0


def nequip_reference(path, z, xyz, charge, dtype):
    """nequip's ASE calculator on the deployed file, in the file's own precision (float64: the random
    models are written with model_dtype float64), whatever ``dtype``: the single-precision adapter
    is a float32 conversion of the model, compared at float32's tolerance.  nequip builds its input
    in torch's default dtype, which its own loader would set process-wide to the model's
    default_dtype (float64); it is set for the call only."""
    from ase import Atoms
    from nequip.ase import NequIPCalculator
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "chemical symbols as type names": they are, here
            calc = NequIPCalculator.from_deployed_model(str(path), set_global_options=False)
        atoms = Atoms(numbers=z, positions=xyz * 10.0)
        atoms.calc = calc
        return atoms.get_potential_energy() * EV_TO_KJ_PER_MOL, atoms.get_forces() * EV_TO_KJ_PER_MOL * 10.0
    finally:
        torch.set_default_dtype(previous)


def nequip_version():
    try:
        return Version(version("nequip"))
    except PackageNotFoundError:
        return None


FAMILIES = {
    # name: (package, writer, file name, reference, charge-aware, load options for the reference comparison)
    "aimnet2": ("aimnet", "write_random_aimnet2", "aimnet2_small.pt", aimnet2_reference, True, {}),
    "mace": ("mace", "write_random_mace", "small.model", mace_reference, False, {"energy_type": "energy"}),
    "tensornet": ("torchmdnet", "write_random_tensornet", "small.ckpt", tensornet_reference, True, {}),
    "nequip": ("nequip", "write_random_nequip", "nequip_deployed.pth", nequip_reference, False, {}),
    "allegro": ("allegro", "write_random_allegro", "allegro_deployed.pth", nequip_reference, False, {}),
}


@pytest.fixture(scope="module")
def family_file(tmp_path_factory):
    files = {}

    def get(family):
        if family not in files:
            package, writer, name, *_ = FAMILIES[family]
            if family in ("nequip", "allegro"):
                if nequip_version() is not None and nequip_version() >= Version("0.7"):
                    pytest.skip(f"nequip-deploy files are written by nequip < 0.7 (this is {nequip_version()}); "
                                f"see test_compiled_files_of_nequip_0_7")
                # nequip 0.6's e3nn 0.4.4 pickles its constants, which torch >= 2.6 loads only so
                os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
            pytest.importorskip(package, reason=f"{package} is not installed (pip install .[test])")
            from openmm_hybrid import testing
            folder = tmp_path_factory.mktemp(family)
            files[family] = getattr(testing, writer)(folder / name)
        return files[family]
    return get


@pytest.fixture(scope="module")
def region_energy(family_file):
    """energy(family, precision, z, xyz, charge, periodic_box=None) -> (E, F) through the region module."""
    models = {}

    def evaluate(family, precision, z, xyz, charge=0.0, box=None, **options):
        key = (family, precision, tuple(sorted(options.items())))
        if key not in models:
            models[key] = load_model(str(family_file(family)), precision=precision, **options)
        module = create_region_module(models[key], list(range(len(z))), z, total_charge=charge,
                                      periodic=box is not None)
        pos = torch.tensor(xyz, dtype=torch.float64, requires_grad=True)
        energy = module(pos, torch.tensor(box, dtype=torch.float64)) if box is not None else module(pos)
        grad = torch.autograd.grad(energy, pos)[0]
        return float(energy), -grad.numpy()
    return evaluate


FAMILY_NAMES = list(FAMILIES)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("name,smiles,charge", MOLECULES)
def test_equals_the_package_evaluation(family, precision, name, smiles, charge, family_file, region_energy):
    """Energies and forces equal the package's own evaluation; for the charge-aware families at
    the molecule's net charge, so the charge reaches the model (and changes the energy)."""
    _, _, _, reference, charge_aware, options = FAMILIES[family]
    if charge and not charge_aware:
        pytest.skip(f"{family} models are for neutral molecules (the refusal is tested below and in "
                    f"test_models_nequip.py)")
    z, xyz = molecule(smiles)
    dtype = torch.float64 if precision == "double" else torch.float32
    e_ref, f_ref = reference(family_file(family), z, xyz, charge, dtype)
    e, f = region_energy(family, precision, z, xyz, charge, **options)
    scale_e = max(abs(e_ref), 1.0)
    scale_f = max(np.abs(f_ref).max(), 1.0)
    rel = 1e-11 if precision == "double" else 1e-5
    assert abs(e - e_ref) <= rel * scale_e, (e, e_ref)
    assert np.abs(f - f_ref).max() <= (1e-10 if precision == "double" else 1e-4) * scale_f
    if charge:
        e_neutral_ref, _ = reference(family_file(family), z, xyz, 0, dtype)
        e_neutral, _ = region_energy(family, precision, z, xyz, 0.0, **options)
        assert abs(e_neutral - e_neutral_ref) <= rel * scale_e
        # the charge changes the energy by far more than float64 round-off (so the comparisons at
        # both charges tell the charge reached the model; a random TensorNet's charge effect can
        # be below float32's tolerance, so this is asked in double precision)
        if precision == "double":
            assert abs(e - e_neutral) > 1e3 * rel * scale_e


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_forces_are_the_energy_gradient(family, region_energy):
    z, xyz = molecule("CC(=O)[O-]")
    charge = -1.0 if FAMILIES[family][4] else 0.0
    e0, forces = region_energy(family, "double", z, xyz, charge)
    h = 1e-5  # nm: central differences are then accurate to ~h^2 * F''' ~ 1e-7 of the forces
    for atom, axis in [(0, 0), (2, 1), (5, 2)]:
        plus, minus = xyz.copy(), xyz.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        fd = -(region_energy(family, "double", z, plus, charge)[0] - region_energy(family, "double", z, minus,
                                                                                      charge)[0]) / (2 * h)
        assert fd == pytest.approx(forces[atom, axis], abs=1e-5 * max(np.abs(forces).max(), 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_invariances(family, region_energy):
    """Rotation, translation and the order of the ML atoms leave energies (and force vectors) unchanged."""
    z, xyz = molecule("OCCBr")
    e, forces = region_energy(family, "double", z, xyz)
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    moved = xyz @ rotation.T + np.array([0.31, -1.2, 2.5])
    e_moved, f_moved = region_energy(family, "double", z, moved)
    assert e_moved == pytest.approx(e, abs=1e-10 * max(abs(e), 1.0))
    assert np.abs(f_moved - forces @ rotation.T).max() <= 1e-9 * max(np.abs(forces).max(), 1.0)
    order = np.random.default_rng(3).permutation(len(z))
    e_perm, f_perm = region_energy(family, "double", [z[i] for i in order], xyz[order])
    assert e_perm == pytest.approx(e, abs=1e-10 * max(abs(e), 1.0))
    assert np.abs(f_perm - forces[order]).max() <= 1e-9 * max(np.abs(forces).max(), 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_region_split_by_the_box_is_made_whole(family, region_energy):
    z, xyz = molecule("OCCBr")
    box = np.diag([2.0, 2.1, 2.2])
    e, forces = region_energy(family, "double", z, xyz, box=box)
    wrapped = xyz.copy()
    wrapped[1:4] += box[0] - box[2]  # some atoms in another periodic image
    e_wrapped, f_wrapped = region_energy(family, "double", z, wrapped, box=box)
    assert e_wrapped == pytest.approx(e, abs=1e-10 * max(abs(e), 1.0))
    assert np.abs(f_wrapped - forces).max() <= 1e-9 * max(np.abs(forces).max(), 1.0)


@pytest.mark.slow
def test_neutral_only_models_refuse_a_charged_region(family_file):
    model = load_model(str(family_file("mace")))
    assert not model.supports_charge
    with pytest.raises(ModelError, match="net charge -1 e, but model .* is for neutral molecules only"):
        model.check_region([6, 6, 8, 8, 1, 1, 1], -1)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_elements_are_read_from_the_model(family, family_file):
    model = load_model(str(family_file(family)))
    assert 35 in model.supported_elements and 6 in model.supported_elements
    if family != "tensornet":  # TorchMD-Net checkpoints record only max_z
        assert 14 not in model.supported_elements
        with pytest.raises(ModelError, match="element\\(s\\) Si that model"):
            model.check_region([6, 14, 1], 0)
    assert model.supports_charge == FAMILIES[family][4]


@pytest.mark.slow
def test_names_resolve_offline_from_the_model_dir(family_file, region_energy, tmp_path, monkeypatch):
    """``aimnet2`` and ``mace-off23-small`` load their published file from $OPENMM_HYBRID_MODEL_DIR."""
    monkeypatch.setenv(MODEL_DIR_VARIABLE, str(tmp_path))
    os.symlink(family_file("aimnet2"), tmp_path / "aimnet2_wb97m_d3_0.pt")
    os.symlink(family_file("mace"), tmp_path / "MACE-OFF23_small.model")
    z, xyz = molecule("OCCBr")
    by_name = load_model("aimnet2", precision="double")
    assert by_name.name == "aimnet2"
    module = create_region_module(by_name, list(range(len(z))), z)
    assert float(module(torch.tensor(xyz))) == pytest.approx(region_energy("aimnet2", "double", z, xyz)[0],
                                                             rel=1e-12)
    assert load_model("mace-off23-small").supported_elements == load_model(str(family_file("mace"))).supported_elements


def test_published_files_are_found_in_order_and_a_missing_one_is_named(tmp_path, monkeypatch):
    """$OPENMM_HYBRID_MODEL_DIR first, then the package's cache, then its download; else the refusal."""
    from openmm_hybrid.models.model_files import find_model_file
    folder, cache = tmp_path / "models", tmp_path / "cache.pt"
    monkeypatch.setenv(MODEL_DIR_VARIABLE, str(folder))

    def offline():
        raise ConnectionError("no network")

    with pytest.raises(ModelError, match=r"model 'm' needs the published file m\.pt, which is not in "
                                         r"\$OPENMM_HYBRID_MODEL_DIR .* nor in pkg's cache .*ConnectionError: no "
                                         r"network\)\. Put m\.pt in"):
        find_model_file("m", "m.pt", cache, offline, "pkg")
    assert find_model_file("m", "m.pt", cache, lambda: str(tmp_path / "downloaded.pt"), "pkg") == \
        tmp_path / "downloaded.pt"
    cache.write_bytes(b"x")
    assert find_model_file("m", "m.pt", cache, offline, "pkg") == cache
    folder.mkdir()
    (folder / "m.pt").write_bytes(b"x")
    assert find_model_file("m", "m.pt", cache, offline, "pkg") == folder / "m.pt"


@pytest.mark.slow
def test_a_missing_published_file_is_named(tmp_path, monkeypatch):
    pytest.importorskip("aimnet")
    from aimnet.calculators import model_registry

    def no_network(name):
        raise ConnectionError("no network")
    monkeypatch.setenv(MODEL_DIR_VARIABLE, str(tmp_path / "models"))
    monkeypatch.setenv("AIMNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(model_registry, "get_registry_model_path", no_network)
    with pytest.raises(ModelError, match=r"model 'aimnet2' needs the published file aimnet2_wb97m_d3_2\.pt.*"
                                         r"Put aimnet2_wb97m_d3_2\.pt in \$OPENMM_HYBRID_MODEL_DIR"):
        load_model("aimnet2", model_index=2)
    with pytest.raises(ModelError, match="model_index must be 0-3"):
        load_model("aimnet2", model_index=4)


def test_describe_needs_no_weights():
    assert describe_model("aimnet2").supports_charge is True
    assert 53 in describe_model("aimnet2").supported_elements
    assert describe_model("mace-off23-small").supports_charge is False
    assert describe_model("aceff-1.1").supports_charge is True
    assert describe_model("ani2x").supported_elements == [1, 6, 7, 8, 9, 16, 17]


@pytest.mark.slow
def test_modules_hold_no_python_operators(family_file):
    """The TorchScript run in OpenMM holds only PyTorch's own operators (no Warp or other Python
    custom operators, which would call back into Python and could not be read elsewhere)."""
    import re
    for family in FAMILY_NAMES:
        model = load_model(str(family_file(family)))
        module = create_region_module(model, [0, 1, 2], [6, 8, 1])
        namespaces = set(re.findall(r"\b(\w+)::\w+", str(module.inlined_graph)))
        assert namespaces <= {"aten", "prim"}, (family, namespaces)


# openmm-ml 1.8's potential names and arguments for the same files.  Tolerances: openmm-ml's
# MACE route runs in float64 (precision="double"): 0.01 kJ/mol, as asked of the adapters.  Its
# AIMNet2 and TorchMD-Net routes evaluate in float32 whatever is asked (aimnet casts inputs to
# float32; openmm-ml hands TorchMD-Net float32 positions), so there the tolerance is float32's:
# 2e-6 of the ML energy (a few float32 roundings of the largest term, which is the atomic
# reference energy for AIMNet2).  openmm-ml's TorchMD-Net converts eV with 96.4916 kJ/mol: the
# same scale is given to the adapter.
OPENMM_ML = {
    "aimnet2": ("aimnet", {}, {}, "double"),
    "mace": ("mace", {"precision": "double"}, {}, "double"),
    "tensornet": ("torchmdnet", {}, {"energy_scale": 96.4916}, "single"),
}
# openmm-ml 1.8's `nequip` potential reads nequip >= 0.7 checkpoints and packages (load_saved_model),
# and nequip >= 0.7 needs e3nn >= 0.5, which mace-torch (e3nn 0.4.4) excludes from this environment
NOT_IN_OPENMM_ML = {family: "openmm-ml 1.8 reads only nequip >= 0.7 files; the test environment has nequip 0.6 "
                            "(mace-torch pins e3nn 0.4.4)" for family in ("nequip", "allegro")}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_equals_openmm_ml_create_mixed_system(family, family_file):
    from openmmml import MLPotential

    from openmm_hybrid.hybrid import create_hybrid_system
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.mm.parameters import ambertools_available
    from openmm_hybrid.testing import compute
    if not ambertools_available():
        pytest.skip("AmberTools not found")
    if family in NOT_IN_OPENMM_ML:
        pytest.skip(NOT_IN_OPENMM_ML[family])
    name, ml_options, options, precision = OPENMM_ML[family]
    smiles, charge = ("CC(=O)[O-]", -1) if FAMILIES[family][4] else ("OCCBr", 0)
    built = build_system(ligand=smiles, solvent="vacuum")
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    path = family_file(family)
    ours = create_hybrid_system(built.topology, built.system, ligand, model=str(path), precision=precision,
                                model_options=options).system
    theirs = MLPotential(name, modelPath=str(path)).createMixedSystem(built.topology, built.system, ligand,
                                                                      charge=charge, **ml_options)
    e_ours, f_ours = compute(ours, built.positions, "Reference")
    e_theirs, f_theirs = compute(theirs, built.positions, "Reference")
    e_ml = compute(ours, built.positions, "Reference", groups={1})[0]
    tolerance = 0.01 if family == "mace" else max(0.01, 2e-6 * abs(e_ml))
    assert abs(e_ours - e_theirs) <= tolerance, (e_ours, e_theirs)
    assert np.abs(f_ours - f_theirs).max() <= 1e-4 * max(np.abs(f_theirs).max(), 1.0)


def test_every_registered_model_is_an_openmm_ml_potential():
    """setup.py lists the hybrid-<name> entry points by hand: they must match the model registry."""
    from importlib.metadata import entry_points
    from openmm_hybrid.models import available_models
    installed = {ep.name for ep in entry_points(group="openmmml.potentials") if ep.name.startswith("hybrid-")}
    assert installed == {f"hybrid-{name}" for name in available_models()}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["nequip", "allegro"])
def test_compiled_files_of_nequip_0_7(architecture, tmp_path):
    """nequip >= 0.7's ``nequip-compile --mode torchscript`` files (NequIP; Allegro with per-edge-type
    cutoffs): equal to nequip's own ASE calculator on the same file, and to openmm-ml 1.8's ``nequip``
    potential on the checkpoint the file was compiled from.  Runs only where nequip >= 0.7 is
    installed: it needs e3nn >= 0.5, which mace-torch (e3nn 0.4.4) keeps out of the test extra."""
    from openmmml import MLPotential

    from openmm_hybrid.hybrid import create_hybrid_system
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.mm.parameters import ambertools_available
    from openmm_hybrid.testing import compute, write_compiled_nequip
    if nequip_version() is None or nequip_version() < Version("0.7"):
        pytest.skip(f"needs nequip >= 0.7 (installed: {nequip_version()}), which needs e3nn >= 0.5: not "
                    f"installable beside mace-torch (e3nn 0.4.4), so not in the test extra")
    if architecture == "allegro":
        pytest.importorskip("allegro", reason="nequip-allegro is not installed")
    compiled, checkpoint = write_compiled_nequip(tmp_path, architecture)
    from ase import Atoms
    from nequip.integrations.ase import NequIPCalculator
    z, xyz = molecule("NCCO")
    atoms = Atoms(numbers=z, positions=xyz * 10.0)
    atoms.calc = NequIPCalculator.from_compiled_model(str(compiled), device="cpu")
    e_ref = atoms.get_potential_energy() * EV_TO_KJ_PER_MOL
    f_ref = atoms.get_forces() * EV_TO_KJ_PER_MOL * 10.0
    for precision, rel_e, rel_f in (("double", 1e-11, 1e-10), ("single", 1e-5, 1e-4)):
        module = create_region_module(load_model(str(compiled), precision=precision), list(range(len(z))), z)
        pos = torch.tensor(xyz, requires_grad=True)
        energy = module(pos)
        forces = -torch.autograd.grad(energy, pos)[0].numpy()
        assert abs(float(energy.detach()) - e_ref) <= rel_e * max(abs(e_ref), 1.0)
        assert np.abs(forces - f_ref).max() <= rel_f * np.abs(f_ref).max()
    if not ambertools_available():
        pytest.skip("AmberTools not found")
    built = build_system(ligand="NCCO", solvent="vacuum")
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    ours = create_hybrid_system(built.topology, built.system, ligand, model=str(compiled), precision="double").system
    theirs = MLPotential("nequip", modelPath=str(checkpoint), lengthScale=0.1,
                         energyScale=EV_TO_KJ_PER_MOL).createMixedSystem(built.topology, built.system, ligand,
                                                                         precision="double")
    e_ours, f_ours = compute(ours, built.positions, "Reference")
    e_theirs, f_theirs = compute(theirs, built.positions, "Reference")
    assert abs(e_ours - e_theirs) <= 0.01
    assert np.abs(f_ours - f_theirs).max() <= 1e-4 * max(np.abs(f_theirs).max(), 1.0)
