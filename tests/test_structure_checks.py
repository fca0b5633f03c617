"""Structure and argument checks at build: chain breaks, clashes, hydrogen masses, argument ranges."""
import numpy as np
import pytest
from openmm import unit
from rdkit import Chem

from helpers import requires_ambertools
from openmm_hybrid.cli import main
from openmm_hybrid.errors import HybridError, StructureError
from openmm_hybrid.mm import build_system
from openmm_hybrid.mm.ligand import load_ligand
from openmm_hybrid.mm.structure_checks import (CLASH_LIMIT_NM, PEPTIDE_BOND_LIMIT_NM, check_structure,
                                               find_chain_breaks, find_clashes)


@pytest.fixture(scope="module")
def gapped_protein(tmp_path_factory, example_dir):
    """T4 lysozyme (the example's receptor) with residues 50-52 removed."""
    lines = (example_dir / "receptor.pdb").read_text().splitlines()
    kept = [line for line in lines if not (line.startswith(("ATOM", "HETATM")) and 50 <= int(line[22:26]) <= 52)]
    path = tmp_path_factory.mktemp("gap") / "gap.pdb"
    path.write_text("\n".join(kept) + "\n")
    return path


def test_intact_protein_has_no_breaks_or_clashes(example_dir):
    import openmm.app as app
    pdb = app.PDBFile(str(example_dir / "receptor.pdb"))
    assert find_chain_breaks(pdb.topology, pdb.positions) == []
    assert find_clashes(pdb.topology, pdb.positions) == []
    check_structure(pdb.topology, pdb.positions)


def test_chain_break_is_refused_naming_the_residues(gapped_protein, capsys):
    with pytest.raises(StructureError, match=r"broken 1 time\(s\), residues are missing: between chain .* residue "
                                             r"ALA 49 and residue ASN 53: C-N 0\.9\d\d nm.*--allow-chain-breaks"):
        build_system(protein=str(gapped_protein), solvent="vacuum")
    assert main(["build", "--protein", str(gapped_protein), "--solvent", "vacuum", "--out", "never"]) == 2
    assert "residues are missing" in capsys.readouterr().err


def test_chain_break_builds_when_allowed(gapped_protein):
    built = build_system(protein=str(gapped_protein), solvent="vacuum", allow_chain_breaks=True)
    xyz = np.asarray(built.positions.value_in_unit(unit.nanometer))
    breaks = [(c, n) for c, n, _ in find_chain_breaks(built.topology, xyz)]
    assert len(breaks) == 1 and (breaks[0][0].residue.id, breaks[0][1].residue.id) == ("49", "53")


@requires_ambertools
def test_ligand_placed_into_a_protein_atom_is_refused(example_dir, tmp_path):
    """p-xylene moved so that a carbon sits 0.037 nm from a protein atom (the probe: E = 4e10 kJ/mol)."""
    import openmm.app as app
    pdb = app.PDBFile(str(example_dir / "receptor.pdb"))
    protein_xyz = np.asarray(pdb.positions.value_in_unit(unit.nanometer))
    target = next(a.index for a in pdb.topology.atoms() if a.residue.name == "LEU" and a.name == "CD1")
    mol = Chem.MolFromMolFile(str(example_dir / "p-xylene.sdf"), removeHs=False)
    conf = mol.GetConformer()
    first = np.array(conf.GetAtomPosition(0))
    shift = protein_xyz[target] * 10.0 + np.array([0.37, 0.0, 0.0]) - first    # angstrom
    for i in range(mol.GetNumAtoms()):
        conf.SetAtomPosition(i, (np.array(conf.GetAtomPosition(i)) + shift).tolist())
    path = tmp_path / "clash.sdf"
    Chem.MolToMolFile(mol, str(path))
    with pytest.raises(StructureError, match=r"pair\(s\) of heavy atoms are closer than 0\.17 nm without being "
                                             r"bonded: chain .* residue LEU \d+ atom CD1 and chain .* residue LIG "
                                             r"\d+ atom C\w*: 0\.037 nm"):
        build_system(protein=str(example_dir / "receptor.pdb"), ligand=str(path), solvent="vacuum")


def test_ligand_with_overlapping_atoms_is_refused():
    ligand = load_ligand("CCCO")
    topology, positions = ligand.to_openmm()
    xyz = np.asarray(positions.value_in_unit(unit.nanometer))
    check_structure(topology, xyz)                        # 1-2 and 1-3 pairs are close by nature
    xyz[3] = xyz[0] + [0.05, 0, 0]                        # the oxygen (three bonds away) onto the first carbon
    with pytest.raises(StructureError, match="LIG 1 atom C1 and .*atom O1: 0.050 nm"):
        check_structure(topology, xyz)
    assert CLASH_LIMIT_NM < 0.2 < PEPTIDE_BOND_LIMIT_NM + 0.01


@requires_ambertools
def test_hydrogen_mass_that_leaves_negative_masses_is_refused(capsys):
    with pytest.raises(HybridError, match=r"hydrogen mass 20 amu leaves \d+ atom\(s\) with zero or negative mass: "
                                          r".*LIG 1 atom C1 \(-\d+\.\d\d amu\).*must stay below \d+\.\d\d amu"):
        build_system(ligand="CCO", solvent="vacuum", hydrogen_mass=20)
    assert main(["build", "--ligand", "CCO", "--solvent", "vacuum", "--hmr", "0.5", "--out", "never"]) == 2
    assert "hydrogen mass (--hmr) must be at least 1.008 amu, not 0.5 amu" in capsys.readouterr().err
    built = build_system(ligand="CCO", solvent="vacuum", hydrogen_mass=3)            # the usual choice builds
    assert min(built.system.getParticleMass(i).value_in_unit(unit.amu)
               for i in range(built.system.getNumParticles())) > 1


@pytest.mark.parametrize("option, value, message", [
    ("--padding", "-1", "padding must be greater than 0 nm, not -1 nm"),
    ("--padding", "0", "padding must be greater than 0 nm, not 0 nm"),
    ("--ionic-strength", "-1", "ionic strength must be at least 0 molar, not -1 molar"),
    ("--ph", "15", "pH must be at least 0 and at most 14, not 15"),
])
def test_build_argument_ranges(option, value, message, capsys, tmp_path):
    assert main(["build", "--ligand", "CCO", option, value, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
