"""The command line: build -> embed -> energy -> run, the bundled example, and its errors."""
import csv
import json

import numpy as np
import pytest

from helpers import requires_ani
from openmm_hybrid.testing import compute
from openmm_hybrid.mm import load_build
from openmm_hybrid.cli import main


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, example_dir):
    """build (p-xylene in water) and embed it with ANI-2x through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["--quiet", "build", "--ligand", str(example_dir / "p-xylene.sdf"), "--solvent", "explicit",
                 "--padding", "1.2", "--out", str(root / "build")]) == 0
    return root


def test_build_outputs(pipeline):
    info = json.loads((pipeline / "build" / "build.json").read_text())
    assert info["atom_counts"]["ligand"] == 18 and info["ligand"]["net_charge"] == 0
    assert info["force_fields"]["ligand"] == "GAFF2 + AM1-BCC"
    assert info["box_nm"] is not None and info["nonbonded_method"] == "PME"
    built = load_build(pipeline / "build")
    assert built.system.getNumParticles() == info["atom_counts"]["total"]


@requires_ani
def test_embed_energy_and_run(pipeline, capsys):
    build, embed, run = pipeline / "build", pipeline / "embed", pipeline / "run"
    assert main(["--quiet", "embed", "--input", str(build), "--region", "resname LIG", "--model", "ani2x",
                 "--embedding", "mechanical", "--precision", "single", "--out", str(embed)]) == 0
    info = json.loads((embed / "embed.json").read_text())
    assert info["ml_atoms"] == list(range(18))
    assert info["model"] == "ani2x" and info["embedding"] == "mechanical"
    assert info["force_groups"] == {"ml": 1, "mm": [0]}
    for name in ("system.xml", "topology.pdb", "state.xml"):
        assert (embed / name).is_file()

    capsys.readouterr()
    assert main(["--quiet", "energy", "--input", str(embed), "--platform", "CPU"]) == 0
    energies = json.loads(capsys.readouterr().out)
    assert energies["units"] == "kJ/mol"
    parts = energies["mm_bonded"] + energies["mm_nonbonded"] + energies["ml"]
    assert energies["total"] == pytest.approx(parts, abs=0.05)
    assert energies["ml"] < -8e5  # ANI-2x total energy of p-xylene (self energies included)
    # the reloaded system.xml gives the energy of a freshly embedded system
    built = load_build(embed)
    e, _ = compute(built.system, built.positions, "CPU", built.state.getPeriodicBoxVectors())
    assert e == pytest.approx(energies["total"], abs=0.05)

    assert main(["--quiet", "run", "--input", str(embed), "--steps", "20", "--report-interval", "5",
                 "--minimize-iterations", "20", "--warmup-steps", "20", "--platform", "CPU", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "ns/day" in out
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [0, 5, 10, 15, 20]
    assert all(np.isfinite(float(r["ml_kjmol"])) for r in rows)
    for name in ("trajectory.dcd", "final_state.xml", "final.pdb", "run.json"):
        assert (run / name).is_file()
    summary = json.loads((run / "run.json").read_text())
    assert summary["ns_per_day"] > 0 and summary["scheme"] == "single time step"
    assert summary["warmup"]["steps"] == 20


@requires_ani
def test_run_refuses_nan_with_step(pipeline, capsys):
    """A time step far too large blows the system up: the run stops and names the step."""
    embed = pipeline / "embed-nan"
    assert main(["--quiet", "embed", "--input", str(pipeline / "build"), "--out", str(embed)]) == 0
    code = main(["--quiet", "run", "--input", str(embed), "--steps", "400", "--timestep", "40",
                 "--report-interval", "1", "--no-minimize", "--platform", "CPU", "--out", str(pipeline / "nan")])
    assert code == 2
    err = capsys.readouterr().err
    assert "energy is not finite at step" in err


@requires_ani
@pytest.mark.slow
def test_bundled_example_runs(tmp_path, capsys):
    """`openmm-hybrid run` with no --input: T4 lysozyme L99A + p-xylene in water, built, embedded, run."""
    assert main(["--quiet", "run", "--steps", "10", "--report-interval", "5", "--minimize-iterations", "10",
                 "--out", str(tmp_path)]) == 0
    build = json.loads((tmp_path / "build" / "build.json").read_text())
    assert build["atom_counts"]["protein"] == 2603 and build["atom_counts"]["ligand"] == 18
    assert build["atom_counts"]["water"] > 10000
    embed = json.loads((tmp_path / "embed" / "embed.json").read_text())
    assert len(embed["ml_atoms"]) == 18
    assert (tmp_path / "trajectory.dcd").is_file()
    assert "ns/day" in capsys.readouterr().out


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["build", "--protein", str(tmp_path / "missing.pdb"), "--out", str(tmp_path / "x")]) == 2
    assert "protein file" in capsys.readouterr().err
    assert main(["build", "--ligand", str(tmp_path / "missing.sdf"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.sdf" in capsys.readouterr().err
    assert main(["energy", "--input", str(tmp_path)]) == 2
    assert "not an openmm-hybrid system directory" in capsys.readouterr().err
    assert main(["build", "--ligand", "CCO", "--solvent", "explicit", "--padding", "0.5",
                 "--out", str(tmp_path / "y")]) == 2
    assert "narrower than twice the nonbonded cutoff" in capsys.readouterr().err
