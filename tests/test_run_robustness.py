"""`run` and `energy` on small real systems: blow-ups stopped (naming step and atoms), legitimate runs
not stopped, argument refusals, SIGTERM/Ctrl-C with checkpoints and an exact resume, valid JSON."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from typing import Optional

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from helpers import requires_ambertools, requires_ani
from openmm_hybrid._files import partial_folder
from openmm_hybrid.cli import main
from openmm_hybrid.dynamics import run_checkpoint
from openmm_hybrid.dynamics.stability import BlowUpDetector
from openmm_hybrid.errors import SimulationError
from openmm_hybrid.forces import ML_FORCE_NAME, create_module_force
from openmm_hybrid.mm import BuiltSystem, load_build
from openmm_hybrid.testing import ani_weights_available

pytestmark = requires_ambertools


@pytest.fixture(scope="module")
def methanol(tmp_path_factory):
    """Methanol in vacuum (GAFF2/AM1-BCC); ``_embedded`` adds it embedded with one ANI-2x network."""
    root = tmp_path_factory.mktemp("methanol")
    assert main(["--quiet", "build", "--ligand", "CO", "--solvent", "vacuum", "--out", str(root / "build")]) == 0
    return root


def _embedded(root):
    """The build embedded with ANI-2x network 0 (one network: cheaper to build than the ensemble)."""
    embed = root / "embed"
    if not embed.is_dir():
        assert main(["--quiet", "embed", "--input", str(root / "build"), "--model-index", "0", "--out", str(embed)]) == 0
    return embed


def _steps(folder):
    return [int(row["step"]) for row in csv.DictReader(open(folder / "log.csv"))]


@requires_ani
def test_vacuum_run_that_flies_apart_is_stopped_naming_step_and_atoms(methanol, tmp_path, capsys):
    """10 fs steps tear ANI-2x methanol apart without a NaN (atoms hundreds of angstrom apart,
    constant energy): the run stops naming the atoms and exits 2, in the warm-up (checked after every
    stage) and, without warm-up, at the first report of the production run."""
    warmed = tmp_path / "warmed"
    code = main(["--quiet", "run", "--input", str(_embedded(methanol)), "--timestep", "10", "--steps", "3000",
                 "--platform", "CPU", "--out", str(warmed)])
    err = capsys.readouterr().err
    assert code == 2
    assert "bonded atoms LIG 1 atom" in err and "of the warm-up" in err and "coming apart" in err
    out = tmp_path / "run"
    code = main(["--quiet", "run", "--input", str(_embedded(methanol)), "--timestep", "10", "--steps", "3000",
                 "--warmup-steps", "0", "--platform", "CPU", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "bonded atoms LIG 1 atom" in err and "apart at step 150" in err and "coming apart" in err
    assert not out.exists() and (partial_folder(out) / "log.csv").is_file()      # kept for a look
    assert main(["run", "--input", str(_embedded(methanol)), "--out", str(out)]) == 2
    assert "holds an interrupted run" in capsys.readouterr().err


def test_legitimate_runs_are_not_stopped(methanol, tmp_path):
    """300 K, 1 fs: 1000 steps of MM methanol in vacuum checked 100 times (15 degrees of freedom, so
    the instantaneous temperature swings widely)."""
    out = tmp_path / "mm"
    assert main(["--quiet", "run", "--input", str(methanol / "build"), "--steps", "1000", "--report-interval", "10",
                 "--platform", "Reference", "--out", str(out)]) == 0
    assert _steps(out) == list(range(0, 1001, 10))


@requires_ani
@pytest.mark.slow
def test_legitimate_ml_run_is_not_stopped(methanol, tmp_path):
    assert main(["--quiet", "run", "--input", str(_embedded(methanol)), "--steps", "1000", "--report-interval",
                 "20", "--platform", "CPU", "--out", str(tmp_path / "ml")]) == 0


def test_detector_names_a_stretched_bond_and_accepts_thermal_noise(methanol):
    built = load_build(methanol / "build")
    xyz = np.asarray(built.positions.value_in_unit(unit.nanometer))
    detector = BlowUpDetector(built.system, built.topology, xyz, 300.0, 15)
    rng = np.random.default_rng(3)
    for _ in range(20):                                  # 0.01 nm displacements: bonds change by ~10%
        detector.check(xyz + rng.normal(0, 0.01, xyz.shape), temperature_K=700.0, step=5)
    stretched = xyz.copy()
    stretched[1] += [0.3, 0, 0]                           # the oxygen pulled 0.3 nm away
    with pytest.raises(SimulationError, match=r"bonded atoms LIG 1 atom C1 \(index 0\) and LIG 1 atom O1 "
                                              r"\(index 1\) are 0\.\d+ nm apart at step 7 after minimisation"):
        detector.check(stretched, step=7, when="after minimisation")
    with pytest.raises(SimulationError, match="temperature is 5000 K at step 9.*limit"):
        detector.check(xyz, temperature_K=5000.0, step=9)


def test_run_argument_refusals(methanol, tmp_path, capsys):
    base = ["run", "--input", str(methanol / "build"), "--out", str(tmp_path / "x")]
    for extra, message in ((["--steps", "0"], "steps (--steps) must be at least 1, not 0"),
                           (["--steps", "-5"], "steps (--steps) must be at least 1, not -5"),
                           (["--temperature", "-300"], "temperature (--temperature) must be greater than 0 K"),
                           (["--timestep", "-1"], "time step (--timestep) must be greater than 0 fs"),
                           (["--report-interval", "0"], "report interval (--report-interval) must be at least 1"),
                           (["--platform", "Nope"], "OpenMM platform 'Nope' is not available here; available: ")):
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback (most recent call last)" not in err, err
    assert "Reference" in err and "CPU" in err                            # the available platforms listed
    assert not (tmp_path / "x").exists() and not partial_folder(tmp_path / "x").exists()


def _final_positions(folder):
    state = openmm.XmlSerializer.deserialize((folder / "final_state.xml").read_text())
    return np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def test_sigterm_stops_the_run_and_resume_repeats_the_uninterrupted_run(methanol, tmp_path, monkeypatch, capsys):
    """SIGTERM arrives after the checkpoint at step 100: the run saves, exits 3 saying how to resume;
    --resume continues from it and ends exactly where an uninterrupted run ends (Reference platform:
    deterministic, and the binary checkpoint restores the random-number state)."""
    args = ["--quiet", "run", "--input", str(methanol / "build"), "--steps", "400", "--report-interval", "50",
            "--checkpoint-interval", "100", "--platform", "Reference", "--seed", "7"]
    reference = tmp_path / "uninterrupted"
    assert main(args + ["--out", str(reference)]) == 0
    save = run_checkpoint.save_checkpoint

    def save_then_terminate(*a, **k):
        step = save(*a, **k)
        os.kill(os.getpid(), signal.SIGTERM)              # as `kill PID` from outside, during the run
        return step

    monkeypatch.setattr(run_checkpoint, "save_checkpoint", save_then_terminate)
    out = tmp_path / "interrupted"
    with pytest.raises(SystemExit) as stop:
        main(args + ["--out", str(out)])
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert "stopped by SIGTERM at step 100 of 400" in err and "rerun the same command with --resume" in err
    assert not out.exists()
    monkeypatch.setattr(run_checkpoint, "save_checkpoint", save)
    assert main(args + ["--out", str(out), "--resume"]) == 0
    assert _steps(out) == _steps(reference) == list(range(0, 401, 50))
    assert np.array_equal(_final_positions(out), _final_positions(reference))
    rows = [list(csv.reader(open(folder / "log.csv")))[1:] for folder in (out, reference)]
    assert [r[:7] for r in rows[0]] == [r[:7] for r in rows[1]]          # all but the speed column
    assert (out / "trajectory.dcd").stat().st_size == (reference / "trajectory.dcd").stat().st_size
    assert json.loads((out / "run.json").read_text())["resumed_at_step"] == 100
    assert not list(out.glob("checkpoint*"))


def test_resume_refuses_another_run_or_a_damaged_checkpoint(methanol, tmp_path, monkeypatch, capsys):
    args = ["run", "--input", str(methanol / "build"), "--steps", "200", "--report-interval", "50",
            "--checkpoint-interval", "50", "--platform", "Reference", "--out", str(tmp_path / "r")]

    save = run_checkpoint.save_checkpoint

    def save_then_interrupt(*a, **k):
        step = save(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)               # Ctrl-C
        return step

    monkeypatch.setattr(run_checkpoint, "save_checkpoint", save_then_interrupt)
    with pytest.raises(SystemExit):
        main(["--quiet"] + args)
    assert "stopped by SIGINT at step 50" in capsys.readouterr().err
    monkeypatch.setattr(run_checkpoint, "save_checkpoint", save)
    assert main(args + ["--resume", "--timestep", "0.5"]) == 2
    assert "belongs to a different run (differs in: timestep_fs)" in capsys.readouterr().err
    binary = next(partial_folder(tmp_path / "r").glob("checkpoint.*.chk"))
    binary.write_bytes(binary.read_bytes()[:-10] + b"0123456789")
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint file '{binary}' is damaged (checksum mismatch)" in err and "--overwrite" in err
    assert main(args + ["--resume", "--out", str(tmp_path / "never")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_energy_prints_valid_json_and_names_a_non_finite_force(methanol, tmp_path, capsys):
    assert main(["energy", "--input", str(methanol / "build"), "--platform", "Reference"]) == 0
    energies = json.loads(capsys.readouterr().out)
    assert energies["units"] == "kJ/mol" and np.isfinite(energies["total"])
    built = load_build(methanol / "build")
    positions = built.positions.value_in_unit(unit.nanometer).copy()
    positions[2] = positions[5]                           # two hydrogens of different atoms on top of each other
    BuiltSystem(built.topology, built.system, positions * unit.nanometer, built.info).save(tmp_path / "overlap")
    assert main(["energy", "--input", str(tmp_path / "overlap"), "--platform", "Reference"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                             # nothing half-printed on stdout
    assert "the potential energy is not finite" in captured.err and "NonbondedForce" in captured.err


class RaisingModel(torch.nn.Module):
    """An ML model that fails at run time (as a model given an unsupported input would)."""

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        if bool(positions.abs().sum() > -1.0):
            raise RuntimeError("model failure for the test")
        return positions.sum()


def test_an_ml_model_that_raises_is_an_error_not_a_traceback(methanol, tmp_path, capsys):
    built = load_build(methanol / "build")
    built.system.addForce(create_module_force(torch.jit.script(RaisingModel()), periodic=False, force_group=1,
                                              name=ML_FORCE_NAME))
    BuiltSystem(built.topology, built.system, built.positions, built.info).save(tmp_path / "bad", state=built.state)
    assert main(["energy", "--input", str(tmp_path / "bad"), "--platform", "CPU"]) == 2
    err = capsys.readouterr().err
    assert "an ML model (TorchScript module) raised an error" in err and "model failure for the test" in err
    assert main(["run", "--input", str(tmp_path / "bad"), "--platform", "CPU", "--steps", "10",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "raised an error" in err and "Traceback (most recent call last)" not in err


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_then_resume(methanol, tmp_path):
    """A real SIGINT at an arbitrary moment of `openmm-hybrid run`: exit 3, then --resume finishes;
    every step is logged once."""
    out = tmp_path / "run"
    args = [sys.executable, "-c", "import sys; from openmm_hybrid.cli import main; sys.exit(main())", "--quiet", "run", "--input", str(methanol / "build"),
            "--steps", "20000", "--report-interval", "100", "--checkpoint-interval", "500", "--platform", "Reference",
            "--out", str(out)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(partial_folder(out).glob("checkpoint.json")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert "stopped by SIGINT" in err and "--resume" in err
    assert subprocess.run(args + ["--resume"], capture_output=True, text=True).returncode == 0
    assert _steps(out) == list(range(0, 20001, 100))


@pytest.mark.slow
def test_normal_runs_of_the_example_systems_and_nma_in_water_are_not_stopped(example_dir, tmp_path):
    """300 K runs of the bundled example's molecules (T4 lysozyme L99A + p-xylene in vacuum, MM; p-xylene in
    water with ANI-2x when available) and N-methylacetamide in water, with the blow-up checks every 10 steps."""
    runs = {"complex": ["--protein", str(example_dir / "receptor.pdb"), "--ligand", str(example_dir / "p-xylene.sdf"),
                        "--solvent", "vacuum"],
            "nma": ["--ligand", "CNC(C)=O", "--solvent", "explicit", "--padding", "1.0"],
            "pxylene": ["--ligand", str(example_dir / "p-xylene.sdf"), "--solvent", "explicit", "--padding", "1.2"]}
    for name, build in runs.items():
        assert main(["--quiet", "build", *build, "--out", str(tmp_path / name)]) == 0
    inputs = {"complex": tmp_path / "complex", "nma": tmp_path / "nma", "pxylene": tmp_path / "pxylene"}
    if ani_weights_available():
        assert main(["--quiet", "embed", "--input", str(tmp_path / "pxylene"), "--out", str(tmp_path / "px-ml")]) == 0
        inputs["pxylene"] = tmp_path / "px-ml"
    for name, folder in inputs.items():
        assert main(["--quiet", "run", "--input", str(folder), "--steps", "1000", "--report-interval", "10",
                     "--minimize-iterations", "200", "--platform", "CPU", "--out", str(tmp_path / f"run-{name}")]) == 0
    # no minimisation and no warm-up: the fresh water box heats to about 6x the bath temperature for a
    # few steps, then cools
    out = tmp_path / "unminimised"
    assert main(["--quiet", "run", "--input", str(tmp_path / "pxylene"), "--steps", "200", "--report-interval", "2",
                 "--no-minimize", "--warmup-steps", "0", "--platform", "CPU", "--out", str(out)]) == 0
    assert max(float(r["temperature_k"]) for r in csv.DictReader(open(out / "log.csv"))) > 1000
