"""Tests of ligand input, GAFF2/AM1-BCC parametrisation, the ffxml export and the template generator.

AmberTools (antechamber/sqm/parmchk2/tleap) must be on PATH or next to the Python; the small
molecules used here take about a second each for AM1-BCC.
"""
import copy
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")
openmm = pytest.importorskip("openmm")
from openmm import app, unit  # noqa: E402
from rdkit import Chem  # noqa: E402
from rdkit.Chem import AllChem  # noqa: E402

from openmm_hybrid.errors import InputFileError, LigandError, ParameterizationError  # noqa: E402
from openmm_hybrid.mm.ligand import load_ligand  # noqa: E402
from openmm_hybrid.mm.parameters import LigandParameters, parametrize_gaff2, parametrize_openff  # noqa: E402
from openmm_hybrid.mm.templates import LigandTemplateGenerator  # noqa: E402

from helpers import EXAMPLES, requires_ambertools as needs_ambertools  # noqa: E402

PXYLENE_SDF = EXAMPLES / "t4-lysozyme" / "p-xylene.sdf"

KJ = unit.kilojoule_per_mole


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Run all tests against an empty, private parameter cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENMM_HYBRID_CACHE", str(tmp_path_factory.mktemp("openmm-hybrid-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def pxylene():
    return load_ligand(PXYLENE_SDF)


@pytest.fixture(scope="session")
def pxylene_gaff2(pxylene, tmp_path_factory):
    """GAFF2 parameters of p-xylene (first run: not cached) and the tleap prmtop."""
    keep = tmp_path_factory.mktemp("pxylene-amber")
    params = parametrize_gaff2(pxylene, keep_files=keep)
    return params, keep / "ligand.prmtop"


@pytest.fixture(scope="session")
def acetate():
    return load_ligand("CC(=O)[O-]", resname="ACT")


def energies_by_force(system, positions):
    """Potential energy (kJ/mol) of each force type, on the Reference platform."""
    system = copy.deepcopy(system)
    names = {}
    for i, force in enumerate(system.getForces()):
        force.setForceGroup(i)
        names[i] = type(force).__name__
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(positions)
    out = {}
    for i, name in names.items():
        if name == "CMMotionRemover":
            continue
        e = ctx.getState(getEnergy=True, groups={i}).getPotentialEnergy().value_in_unit(KJ)
        out[name] = out.get(name, 0.0) + e
    return out


def ffxml_system(ligand, params, extra_files=(), **kwargs):
    xml = params.to_ffxml(ligand.resname, ligand.atom_names, "test")
    ff = app.ForceField(*extra_files, io.StringIO(xml))
    top, pos = ligand.to_openmm()
    kwargs.setdefault("nonbondedMethod", app.NoCutoff)
    kwargs.setdefault("constraints", None)
    kwargs.setdefault("rigidWater", False)
    return ff.createSystem(top, **kwargs), pos


def torsion_set(system):
    """Torsion terms as a sorted list, each torsion's atoms in canonical direction (a dihedral is
    unchanged by reversing its atoms)."""
    force = [f for f in system.getForces() if isinstance(f, openmm.PeriodicTorsionForce)][0]
    out = []
    for t in range(force.getNumTorsions()):
        i, j, k, l, n, phase, kk = force.getTorsionParameters(t)
        if kk.value_in_unit(KJ) == 0:
            continue
        quad = min((i, j, k, l), (l, k, j, i))
        out.append((quad, n, round(phase.value_in_unit(unit.radian), 5), round(kk.value_in_unit(KJ), 5)))
    return sorted(out)


# ----------------------------------------------------------------------------- ligand input
def test_example_sdf_matches_openmmtools_mol2(pxylene):
    mol2 = Path(openmm.__file__).parents[1] / "openmmtools" / "data" / "T4-lysozyme-L99A-implicit" / "ligand.tripos.mol2"
    assert pxylene.name == "p-xylene"
    assert pxylene.n_atoms == 18 and pxylene.net_charge == 0
    assert pxylene.canonical_smiles == "Cc1ccc(C)cc1"
    assert pxylene.identity_key == "Cc1ccc(C)cc1|charge=0"
    assert len(set(pxylene.atom_names)) == 18 and all(len(n) <= 4 for n in pxylene.atom_names)
    if mol2.exists():
        ref = load_ligand(mol2)
        assert ref.atom_names[:3] == ["C1", "C2", "C3"]  # names kept from the MOL2 file
        np.testing.assert_allclose(ref.positions_angstrom, pxylene.positions_angstrom, atol=1e-4)


def test_to_openmm(pxylene):
    top, pos = pxylene.to_openmm()
    residues = list(top.residues())
    assert top.getNumChains() == 1 and len(residues) == 1 and residues[0].name == "LIG"
    assert [a.name for a in top.atoms()] == pxylene.atom_names
    assert top.getNumBonds() == 18
    xyz = pos.value_in_unit(unit.nanometer)
    np.testing.assert_allclose(np.array([[v.x, v.y, v.z] for v in xyz]), pxylene.positions_angstrom / 10)


def test_smiles_input_is_3d_with_hydrogens(acetate):
    assert acetate.resname == "ACT" and acetate.net_charge == -1 and acetate.n_atoms == 7
    assert acetate.mol.GetConformer().Is3D()
    z = acetate.positions_angstrom[:, 2]
    assert np.ptp(z) > 0.1


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"ligand file '.*nothere\.sdf' not found"):
        load_ligand(str(tmp_path / "nothere.sdf"))


def test_unsupported_extension(tmp_path):
    path = tmp_path / "lig.pdb"
    path.write_text("END\n")
    with pytest.raises(InputFileError, match=r"unsupported ligand file extension '\.pdb'"):
        load_ligand(path)


def test_sdf_without_hydrogens(tmp_path):
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    path = tmp_path / "noh.sdf"
    Chem.MolToMolFile(Chem.RemoveHs(mol), str(path))
    with pytest.raises(LigandError, match=r"ligand '.*noh\.sdf' has no explicit hydrogens on atoms C1, C2, O1: "
                                          r"add hydrogens"):
        load_ligand(path)


def test_sdf_2d(tmp_path):
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.Compute2DCoords(mol)
    path = tmp_path / "flat.sdf"
    Chem.MolToMolFile(mol, str(path))
    with pytest.raises(LigandError, match=r"ligand '.*flat\.sdf' has no 3D coordinates"):
        load_ligand(path)


def test_bad_smiles():
    with pytest.raises(LigandError, match=r"could not parse 'C1CC\(' as a SMILES string"):
        load_ligand("C1CC(")


def test_multiple_molecules_and_fragments(tmp_path):
    path = tmp_path / "two.sdf"
    with Chem.SDWriter(str(path)) as w:
        for smi in ("CCO", "CCN"):
            m = Chem.AddHs(Chem.MolFromSmiles(smi))
            AllChem.EmbedMolecule(m, randomSeed=1)
            w.write(m)
    with pytest.raises(LigandError, match=r"contains 2 molecules \(0: two-0, 1: two-1\); which one to use is ambiguous"):
        load_ligand(path)
    with pytest.raises(LigandError, match=r"2 disconnected fragments"):
        load_ligand("CC(=O)[O-].[Na+]")
    empty = tmp_path / "empty.sdf"
    empty.write_text("")
    with pytest.raises(LigandError, match=r"contains no molecule"):
        load_ligand(empty)


# ----------------------------------------------------------------------------- GAFF2 parameters
@needs_ambertools
@pytest.mark.parametrize("perturb", [False, True], ids=["input-geometry", "perturbed-geometry"])
def test_ffxml_reproduces_prmtop_energy(pxylene, pxylene_gaff2, perturb):
    params, prmtop_path = pxylene_gaff2
    assert not params.from_cache
    assert params.atom_types.count("ca") == 6 and params.atom_types.count("c3") == 2
    assert len(params.impropers) == 6  # one per aromatic carbon

    ref_system = app.AmberPrmtopFile(str(prmtop_path)).createSystem(
        nonbondedMethod=app.NoCutoff, constraints=None, rigidWater=False)
    system, pos = ffxml_system(pxylene, params)
    assert torsion_set(system) == torsion_set(ref_system)  # same atoms, impropers included

    xyz = np.array(pos.value_in_unit(unit.nanometer))
    if perturb:
        xyz = xyz + np.random.default_rng(0).normal(scale=0.01, size=xyz.shape)
    e_ref = energies_by_force(ref_system, xyz)
    e_new = energies_by_force(system, xyz)
    assert set(e_new) == {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "NonbondedForce"}
    for name in e_new:
        assert e_new[name] == pytest.approx(e_ref[name], abs=1e-3), name
    if perturb:  # make sure the perturbation does test the off-minimum terms
        assert e_ref["PeriodicTorsionForce"] > 0.1


@needs_ambertools
def test_ffxml_loads_with_amber14_and_obc2(pxylene, pxylene_gaff2):
    params, _ = pxylene_gaff2
    system, _ = ffxml_system(pxylene, params, extra_files=("amber14-all.xml", "amber14/tip3p.xml"))
    assert system.getNumParticles() == 18
    system, _ = ffxml_system(pxylene, params, extra_files=("amber14-all.xml", "implicit/obc2.xml"))
    gb = [f for f in system.getForces() if isinstance(f, openmm.CustomGBForce)]
    assert len(gb) == 1 and gb[0].getNumParticles() == 18


@needs_ambertools
def test_cache_hit_with_renumbered_atoms(pxylene, pxylene_gaff2, capfd):
    params, _ = pxylene_gaff2
    perm = list(np.random.default_rng(1).permutation(pxylene.n_atoms))
    renumbered = load_ligand(Chem.RenumberAtoms(pxylene.mol, [int(i) for i in perm]))
    capfd.readouterr()
    hit = parametrize_gaff2(renumbered)
    assert hit.from_cache
    assert "using cached parameters" in capfd.readouterr().err
    # new atom k is old atom perm[k]
    assert hit.atom_types == [params.atom_types[i] for i in perm]
    np.testing.assert_allclose(hit.charges, [params.charges[i] for i in perm])

    sys_old, pos_old = ffxml_system(pxylene, params)
    sys_new, pos_new = ffxml_system(renumbered, hit)
    xyz_old = np.array(pos_old.value_in_unit(unit.nanometer))
    xyz_old += np.random.default_rng(2).normal(scale=0.01, size=xyz_old.shape)
    xyz_new = xyz_old[perm]
    e_old = energies_by_force(sys_old, xyz_old)
    e_new = energies_by_force(sys_new, xyz_new)
    for name in e_old:
        assert e_new[name] == pytest.approx(e_old[name], abs=1e-3), name


@needs_ambertools
def test_charged_ligand(acetate):
    params = parametrize_gaff2(acetate)
    assert params.net_charge == -1
    assert sum(params.charges) == pytest.approx(-1.0, abs=1e-9)
    oxygens = [i for i, e in enumerate(params.elements) if e == "O"]
    assert params.charges[oxygens[0]] == pytest.approx(params.charges[oxygens[1]], abs=1e-12)  # symmetrised
    hydrogens = [params.charges[i] for i, e in enumerate(params.elements) if e == "H"]
    assert max(hydrogens) - min(hydrogens) < 1e-12
    # JSON round trip used by the cache
    again = LigandParameters.from_dict(params.to_dict())
    assert again.to_ffxml("ACT", acetate.atom_names, "x") == params.to_ffxml("ACT", acetate.atom_names, "x")


@needs_ambertools
def test_antechamber_failure_reports_sqm_output():
    ethanol = load_ligand("CCO")
    ethanol.net_charge = 1  # odd number of electrons: sqm refuses
    with pytest.raises(ParameterizationError, match=r"(?s)antechamber \(AM1-BCC charges\) failed for ligand "
                                                    r"'CCO'.*sqm\.out \(tail\).*odd number of electrons"):
        parametrize_gaff2(ethanol, cache=False)


def test_bad_charge_method(acetate):
    with pytest.raises(ParameterizationError, match=r"unknown charge method 'resp'"):
        parametrize_gaff2(acetate, charge_method="resp")


def test_openff_missing_or_available(acetate):
    try:
        import openff.toolkit  # noqa: F401
    except ImportError:
        with pytest.raises(ParameterizationError, match=r"needs openff-toolkit, which is not installed"):
            parametrize_openff(acetate)
    else:  # pragma: no cover - not installed in the reference environment
        params = parametrize_openff(acetate)
        assert sum(params.charges) == pytest.approx(-1.0, abs=1e-6)


# ----------------------------------------------------------------------------- template generator
def _combined_topology(*ligands):
    water = app.Topology()
    chain = water.addChain()
    res = water.addResidue("HOH", chain)
    o = water.addAtom("O", app.element.oxygen, res)
    h1 = water.addAtom("H1", app.element.hydrogen, res)
    h2 = water.addAtom("H2", app.element.hydrogen, res)
    water.addBond(o, h1)
    water.addBond(o, h2)
    wpos = unit.Quantity([openmm.Vec3(0, 0, 0), openmm.Vec3(0.09572, 0, 0), openmm.Vec3(-0.024, 0.0927, 0)],
                         unit.nanometer)
    top, pos = ligands[0].to_openmm()
    modeller = app.Modeller(top, pos)
    for lig in ligands[1:]:
        modeller.add(*lig.to_openmm())
    modeller.add(water, wpos)
    return modeller


@needs_ambertools
def test_template_generator_two_ligands(pxylene, acetate):
    xylene = load_ligand(pxylene, resname="XYL")
    gen = LigandTemplateGenerator([xylene, acetate])
    ff = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    ff.registerTemplateGenerator(gen.generator)
    modeller = _combined_topology(xylene, acetate)
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    assert system.getNumParticles() == 18 + 7 + 3
    assert gen.residue_charges == {"XYL": 0, "ACT": -1}
    assert [r.from_cache for r in gen.records] == [True, True]  # parametrised earlier in this session
    nb = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    charges = [nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge) for i in range(28)]
    assert sum(charges) == pytest.approx(-1.0, abs=1e-6)
    np.testing.assert_allclose(charges[18:25], parametrize_gaff2(acetate).charges, atol=1e-12)

    # The ligands' bonded terms are those of their own ffxml systems.
    xyz = np.array(modeller.positions.value_in_unit(unit.nanometer))
    xyz += np.random.default_rng(3).normal(scale=0.01, size=xyz.shape)
    e_all = energies_by_force(system, xyz)
    e_xyl = energies_by_force(ffxml_system(xylene, parametrize_gaff2(xylene))[0], xyz[:18])
    e_act = energies_by_force(ffxml_system(acetate, parametrize_gaff2(acetate))[0], xyz[18:25])
    assert e_all["PeriodicTorsionForce"] == pytest.approx(
        e_xyl["PeriodicTorsionForce"] + e_act["PeriodicTorsionForce"], abs=1e-6)

    # A second system with the same ForceField reuses the loaded templates.
    ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff)
    assert len(gen.records) == 2

    # Residues the generator does not know still give OpenMM's own error.
    gen_other = LigandTemplateGenerator(["CCO"])
    ff2 = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    ff2.registerTemplateGenerator(gen_other.generator)
    with pytest.raises(ValueError, match="No template found"):
        ff2.createSystem(xylene.to_openmm()[0])


@needs_ambertools
def test_template_generator_shuffled_residue(pxylene, pxylene_gaff2):
    """A residue with atoms in another order (and other names) gets the prmtop energy."""
    _, prmtop_path = pxylene_gaff2
    perm = [int(i) for i in np.random.default_rng(4).permutation(pxylene.n_atoms)]
    top, pos = pxylene.to_openmm()
    atoms = list(top.atoms())
    shuffled = app.Topology()
    res = shuffled.addResidue("XYL", shuffled.addChain())
    new_atoms = [shuffled.addAtom(f"A{k}", atoms[i].element, res) for k, i in enumerate(perm)]
    where = {old: new for new, old in enumerate(perm)}
    for a, b in top.bonds():
        shuffled.addBond(new_atoms[where[a.index]], new_atoms[where[b.index]])
    gen = LigandTemplateGenerator([pxylene])
    ff = app.ForceField("amber14-all.xml")
    ff.registerTemplateGenerator(gen.generator)
    system = ff.createSystem(shuffled, nonbondedMethod=app.NoCutoff, constraints=None)
    ref_system = app.AmberPrmtopFile(str(prmtop_path)).createSystem(nonbondedMethod=app.NoCutoff, constraints=None)
    xyz = np.array(pos.value_in_unit(unit.nanometer))
    e_ref = energies_by_force(ref_system, xyz)
    e_new = energies_by_force(system, xyz[perm])
    for name in e_ref:  # at the input geometry (near-planar ring) symmetry-equivalent impropers agree
        assert e_new[name] == pytest.approx(e_ref[name], abs=1e-3), name


@needs_ambertools
def test_template_generator_wrong_hydrogens(pxylene):
    top, pos = pxylene.to_openmm()
    modeller = app.Modeller(top, pos)
    modeller.delete([a for a in modeller.topology.atoms() if a.element.symbol == "H"][:1])
    gen = LigandTemplateGenerator([pxylene])
    ff = app.ForceField("amber14-all.xml")
    ff.registerTemplateGenerator(gen.generator)
    with pytest.raises(LigandError, match=r"hydrogens do not match the molecule \(9 hydrogens in the residue, "
                                          r"10 in the molecule\)"):
        ff.createSystem(modeller.topology)
