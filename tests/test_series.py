"""Ligand series: multi-molecule files by name and index, series builds with parallel parameters and the cache."""
import json

import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from helpers import EXAMPLES, count_ambertools_calls, requires_ambertools
from openmm_hybrid.cli import main
from openmm_hybrid.errors import LigandError
from openmm_hybrid.mm import build_series, load_ligand
from openmm_hybrid.mm.ligand import read_ligand_records
from openmm_hybrid.mm.series import folder_name

PEPTIDE = EXAMPLES / "inputs" / "thiolate-peptide.pdb"


def write_sdf(path, molecules):
    """An SDF of (title, SMILES) records with hydrogens and 3D coordinates."""
    with Chem.SDWriter(str(path)) as writer:
        for title, smiles in molecules:
            mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
            AllChem.EmbedMolecule(mol, randomSeed=1)
            mol.SetProp("_Name", title)
            writer.write(mol)
    return path


# Trimethylborane reads and passes every ligand check, but sqm has no AM1 parameters for boron:
# the "unsupported chemistry" that fails in the worker process.
SERIES = [("methanol", "CO"), ("trimethylborane", "CB(C)C"), ("methane", "C")]


def test_multi_molecule_file_by_name_and_index(tmp_path):
    path = write_sdf(tmp_path / "series.sdf", [("benzene", "c1ccccc1"), ("toluene", "Cc1ccccc1"), ("phenol", "Oc1ccccc1")])
    assert [r.name for r in read_ligand_records(path)] == ["benzene", "toluene", "phenol"]
    assert load_ligand(path, name="toluene").canonical_smiles == "Cc1ccccc1"
    assert load_ligand(path, index=2).name == "phenol"
    with pytest.raises(LigandError, match=r"contains 3 molecules \(0: benzene, 1: toluene, 2: phenol\); which one to "
                                          r"use is ambiguous: choose one with --ligand-name NAME"):
        load_ligand(path)
    with pytest.raises(LigandError, match=r"no molecule named 'xylene'; the molecules are: 0: benzene, 1: toluene"):
        load_ligand(path, name="xylene")
    with pytest.raises(LigandError, match=r"has 3 molecules \(indices 0 to 2\), so there is no index 3"):
        load_ligand(path, index=3)
    write_sdf(tmp_path / "twins.sdf", [("x", "C"), ("x", "CC")])
    with pytest.raises(LigandError, match=r"has 2 molecules named 'x' \(indices 0, 1\): choose one with --ligand-index"):
        load_ligand(tmp_path / "twins.sdf", name="x")


def test_multi_molecule_mol2_records(tmp_path):
    """MOL2 series are split at @<TRIPOS>MOLECULE; the record title is the line after it."""
    record = ("@<TRIPOS>MOLECULE\n{name}\n 2 1 0 0 0\nSMALL\nNO_CHARGES\n\n@<TRIPOS>ATOM\n"
              "      1 C1          0.0000    0.0000    0.0000 C.3     1  LIG1        0.0000\n"
              "      2 Cl1         1.7800    0.0000    0.0000 Cl      1  LIG1        0.0000\n"
              "@<TRIPOS>BOND\n     1     1     2    1\n")
    path = tmp_path / "two.mol2"
    path.write_text(record.format(name="first") + record.format(name="second"))
    assert [r.name for r in read_ligand_records(path)] == ["first", "second"]


def test_cli_chooses_a_molecule_of_a_series_file(tmp_path, capsys):
    path = write_sdf(tmp_path / "series.sdf", [("methanol", "CO"), ("ethanol", "CCO")])
    assert main(["build", "--ligand", str(path), "--solvent", "vacuum", "--charge-method", "gas",
                 "--out", str(tmp_path / "x")]) == 2
    assert "contains 2 molecules (0: methanol, 1: ethanol)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # a refused build leaves no folder
    assert main(["--quiet", "build", "--ligand", str(path), "--ligand-name", "ethanol", "--solvent", "vacuum",
                 "--charge-method", "gas", "--out", str(tmp_path / "ethanol")]) == 0
    info = json.loads((tmp_path / "ethanol" / "build.json").read_text())
    assert info["ligand"]["name"] == "ethanol" and info["ligand"]["n_atoms"] == 9
    assert main(["--quiet", "build", "--ligand", str(path), "--ligand-index", "0", "--solvent", "vacuum",
                 "--charge-method", "gas", "--out", str(tmp_path / "first")]) == 0
    assert json.loads((tmp_path / "first" / "build.json").read_text())["ligand"]["name"] == "methanol"


def test_folder_names_are_safe_and_unique():
    taken = set()
    assert [folder_name(n, taken) for n in ("cmpd 1", "cmpd/1", "", "Cmpd_1")] == ["cmpd_1", "cmpd_1-2", "ligand",
                                                                                  "Cmpd_1-3"]  # case-insensitive file systems


@requires_ambertools
def test_series_parallel_parameters_failure_and_cache(tmp_path, monkeypatch, capsys):
    """Three ligands against a peptide, one broken: AM1-BCC in two worker processes (each molecule's
    antechamber/sqm run counted), the others built, the failure reported; the second run reads the cache."""
    monkeypatch.setenv("OPENMM_HYBRID_CACHE", str(tmp_path / "cache"))
    calls = count_ambertools_calls(monkeypatch, tmp_path / "bin")
    series = write_sdf(tmp_path / "series.sdf", SERIES)
    out = tmp_path / "series"
    result = build_series(str(PEPTIDE), str(series), out, jobs=2, solvent="vacuum")
    assert [e.status for e in result.ligands] == ["built", "failed", "built"]
    assert calls()["antechamber"] == 3 and calls()["sqm"] == 3  # one run per molecule, in the workers
    assert [e.parameters for e in result.ligands] == ["computed", None, "computed"]
    summary = json.loads((out / "series.json").read_text())
    assert summary["n_built"] == 2 and summary["n_failed"] == 1 and summary["jobs"] == 2
    broken = summary["ligands"][1]
    assert broken["name"] == "trimethylborane" and broken["stage"] == "parameters" and not broken["complete"]
    assert "antechamber (AM1-BCC charges) failed for ligand 'trimethylborane'" in broken["error"]
    assert "no AM1 parameters for this element" in broken["error"]
    assert not (out / "trimethylborane").exists()  # a failed ligand leaves no folder
    for entry in (summary["ligands"][0], summary["ligands"][2]):
        folder = out / entry["folder"]
        assert entry["complete"] and entry["net_charge"] == 0
        assert sorted(p.name for p in folder.iterdir()) == ["build.json", "prep.json", "state.xml", "system.xml",
                                                            "topology.pdb"]
        info = json.loads((folder / "build.json").read_text())
        assert info["atom_counts"] == entry["atom_counts"]
        assert info["atom_counts"]["ligand"] == entry["ligand_atoms"] and info["atom_counts"]["protein"] == 42
    assert summary["ligands"][2]["ligand_atoms"] == 5

    # Again through the command line: parameters come from the cache (only the broken one runs
    # antechamber again), and the exit status says a ligand failed.
    capsys.readouterr()
    code = main(["build", "--protein", str(PEPTIDE), "--ligands", str(series), "--solvent", "vacuum", "--jobs", "2",
                 "--overwrite", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "1 of 3 ligands failed: trimethylborane (parameters); 2 built" in err
    assert "ligand 1/3 methanol: parameters from the cache" in err
    assert calls()["antechamber"] == 4
    again = json.loads((out / "series.json").read_text())
    assert [e["parameters"] for e in again["ligands"]] == ["cache", None, "cache"]


@requires_ambertools
def test_series_resume_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENMM_HYBRID_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "series"
    first = build_series(None, ["CO"], out, jobs=1, solvent="vacuum", charge_method="gas")
    assert [e.status for e in first.ligands] == ["built"]
    with pytest.raises(Exception, match=r"the series folder .* is not empty: choose a new folder, or pass --overwrite"):
        build_series(None, ["CO"], out, solvent="vacuum")
    calls = count_ambertools_calls(monkeypatch, tmp_path / "bin")
    resumed = build_series(None, ["CO", "CCO"], out, jobs=1, resume=True, solvent="vacuum", charge_method="gas")
    assert [e.status for e in resumed.ligands] == ["built", "built"]
    assert calls()["antechamber"] == 1  # only ethanol: methanol's complete folder was kept
    with pytest.raises(Exception, match="ligand_template does not apply to build_series"):
        build_series(None, ["CO"], tmp_path / "other", ligand_template="CO")


@requires_ambertools
@pytest.mark.slow
def test_t4_lysozyme_series_in_water(tmp_path):
    """The example series (benzene, toluene, ethylbenzene) in the T4 lysozyme L99A pocket, solvated."""
    out = tmp_path / "series"
    assert main(["--quiet", "build", "--protein", str(EXAMPLES / "t4-lysozyme" / "receptor.pdb"), "--ligands",
                 str(EXAMPLES / "t4-lysozyme" / "series.sdf"), "--out", str(out)]) == 0
    summary = json.loads((out / "series.json").read_text())
    assert [e["name"] for e in summary["ligands"]] == ["benzene", "toluene", "ethylbenzene"]
    assert [e["ligand_atoms"] for e in summary["ligands"]] == [12, 15, 18]
    for entry in summary["ligands"]:
        info = json.loads((out / entry["folder"] / "build.json").read_text())
        assert info["box_shape"] == "dodecahedron" and info["atom_counts"]["protein"] == 2603
