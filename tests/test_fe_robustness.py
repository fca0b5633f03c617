"""Free-energy runs never resume another run, never use a damaged checkpoint, never share a folder, and
report whether their uncertainty can be trusted (effective samples, status, coverage of repeats).

The systems are the harmonic wells of test_fe_harmonic.py, where F(ML/MM) - F(MM) is known exactly.
"""
import json
import math
from typing import Optional

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from helpers import requires_ambertools, requires_ani
from openmm_hybrid._files import FolderLock
from openmm_hybrid.cli import main
from openmm_hybrid.forces import ML_FORCE_NAME, create_module_force
from openmm_hybrid.freeenergy import run_endstate
from openmm_hybrid.freeenergy.estimators import neq_analysis, sampling_problems
from test_fe_harmonic import EXACT_KT, K1, START, _save_as_embed_dir, harmonic_system, settings

SETTINGS = ("simulation: {temperature_K: 300, timestep_fs: 10, friction_per_ps: 10, minimize_iterations: null}\n"
            "neq: {n_switches: 8, switch_steps: 10, equilibration_steps: 20, steps_between_samples: 10, "
            "samples_per_segment: 4, switches_per_segment: 4}\n"
            "min_overlap: 0.0\n")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two embed folders of the same MM System with different ML models (stiffness K1 and 1.5 K1),
    and a settings file for short NEQ runs."""
    root = tmp_path_factory.mktemp("fe-robust")
    _save_as_embed_dir(harmonic_system("linear"), root / "E1")
    _save_as_embed_dir(harmonic_system("linear", k1=1.5 * K1), root / "E2")
    (root / "fe.yaml").write_text(SETTINGS)
    return root


def _endstate(folders, embed, out, *extra):
    return ["--quiet", "fe", "endstate", "--input", str(folders / embed), "--out", str(out), "--settings",
            str(folders / "fe.yaml"), "--seed", "5", "--platform", "CPU", *extra]


def test_another_model_in_the_same_folder_is_refused_naming_the_force(folders, tmp_path, capsys):
    """The probe: `fe endstate --input E1 --out F`, then `--input E2 --out F` with E2 the same build embedded
    with another model gave E1's answer for E2 ("resumed": true); now it is refused, naming the ML force."""
    out = tmp_path / "F"
    assert main(_endstate(folders, "E1", out)) == 0
    first = json.loads((out / "results.json").read_text())
    assert main(_endstate(folders, "E2", out)) == 2
    err = capsys.readouterr().err
    assert "holds a checkpoint of a different run (differs in: input.system.forces.1 TorchModuleForce" in err
    assert "--overwrite" in err
    assert json.loads((out / "results.json").read_text()) == first              # untouched
    # an interrupted run resumed with other settings or another platform: refused as well
    partial = tmp_path / "G"
    with pytest.raises(SystemExit):
        main(_endstate(folders, "E1", partial, "--stop-after-segments", "2"))
    assert main(_endstate(folders, "E1", partial, "--set", "neq.switch_steps=12")) == 2
    assert "differs in: settings.neq.switch_steps" in capsys.readouterr().err
    assert main(_endstate(folders, "E1", partial, "--platform", "Reference")) == 2
    assert "platform.name" in capsys.readouterr().err
    assert main(_endstate(folders, "E2", partial, "--overwrite")) == 0          # afresh, with the other model
    assert not json.loads((partial / "results.json").read_text())["resumed"]


@pytest.mark.parametrize("damage", ["corrupt", "missing", "progress"])
def test_damaged_checkpoint_is_named_with_how_to_restart(folders, tmp_path, capsys, damage):
    out = tmp_path / "F"
    with pytest.raises(SystemExit) as stop:
        main(_endstate(folders, "E1", out, "--stop-after-segments", "2"))
    assert stop.value.code == 3
    checkpoint = out / "checkpoint"
    samples = sorted(checkpoint.glob("equilibrium_0.samples.*.npz"))[0]
    if damage == "corrupt":
        data = bytearray(samples.read_bytes())
        data[-20] ^= 0xFF
        samples.write_bytes(bytes(data))
        expected = f"checkpoint file '{samples}' is damaged (checksum mismatch)"
    elif damage == "missing":
        samples.unlink()
        expected = f"checkpoint file '{samples}' is missing"
    else:
        (checkpoint / "progress.json").write_text('{"fingerprint": ')
        expected = f"checkpoint file '{checkpoint / 'progress.json'}' is damaged"
    capsys.readouterr()
    assert main(_endstate(folders, "E1", out)) == 2
    err = capsys.readouterr().err
    assert expected in err and "rerun with --overwrite to start afresh" in err
    assert main(_endstate(folders, "E1", out, "--overwrite")) == 0


def test_second_run_in_a_locked_folder_is_refused(folders, tmp_path, capsys):
    out = tmp_path / "F"
    with FolderLock(out, what="the end-state correction folder"):           # a run in progress elsewhere
        assert main(_endstate(folders, "E1", out)) == 2
    assert "the end-state correction folder" in capsys.readouterr().err
    assert main(_endstate(folders, "E1", out)) == 0                           # free again


def test_output_folder_refusals(folders, tmp_path, capsys):
    assert main(_endstate(folders, "E1", folders / "E1")) == 2
    assert "is the input" in capsys.readouterr().err
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("x")
    assert main(_endstate(folders, "E1", foreign)) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (foreign / "holiday.jpg").is_file()


def test_small_neq_settings_are_reported_as_insufficient_sampling(folders, tmp_path, capsys):
    """8 switches per direction: fewer effective samples than the minimum (20), so the status is
    insufficient_sampling and the printed estimate says that its uncertainty is not reliable."""
    out = tmp_path / "F"
    assert main(_endstate(folders, "E1", out)) == 0
    printed = capsys.readouterr().out
    assert "[status insufficient_sampling: the uncertainty is not reliable" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "insufficient_sampling"
    effective = results["details"]["effective_samples"]
    assert set(effective) == {"forward", "reverse"} and max(effective.values()) <= 8
    assert "effective (independent) samples" in results["sampling_problems"][0]
    assert main(["fe", "report", str(out)]) == 0
    assert "insufficient_sampling" in capsys.readouterr().out


class RaisingModel(torch.nn.Module):
    """An ML term that fails at run time."""

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if bool(positions.abs().sum() > -1.0):
            raise RuntimeError("model failure for the test")
        return positions.sum()


def test_an_ml_model_that_raises_is_an_error_not_a_traceback(tmp_path, capsys):
    system = harmonic_system("linear")
    system.addForce(create_module_force(torch.jit.script(RaisingModel()), periodic=False, force_group=2,
                                        name=ML_FORCE_NAME, scale_parameter="lambda_interpolate"))
    _save_as_embed_dir(system, tmp_path / "bad")
    (tmp_path / "fe.yaml").write_text(SETTINGS)
    assert main(["fe", "endstate", "--input", str(tmp_path / "bad"), "--out", str(tmp_path / "F"), "--settings",
                 str(tmp_path / "fe.yaml"), "--platform", "CPU"]) == 2
    err = capsys.readouterr().err
    assert "an ML model (TorchScript module) raised an error in the end-state correction" in err
    assert "model failure for the test" in err and "Traceback (most recent call last)" not in err


# ---- the reported uncertainty against the spread of repeats --------------------------------------

def _ar1(rng, n, rho, mean, sd):
    """A stationary AR(1) series: correlated samples (statistical inefficiency (1 + rho) / (1 - rho))."""
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)
    noise = rng.normal(0.0, sd * math.sqrt(1 - rho ** 2), n)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + noise[i]
    return mean + x


def _mean_square_bounds(m: int, p: float = 1e-5):
    """Bounds on the mean of m squared standard normals, each exceeded with probability p."""
    return chi2.ppf(p, m) / m, chi2.isf(p, m) / m


@pytest.mark.parametrize("rho, n", [(0.0, 50), (0.8, 200)])
def test_reported_sigma_covers_the_spread_of_repeats(rho, n):
    """Gaussian works obeying Crooks' theorem (W_F ~ N(dF + s^2/2, s^2), W_R ~ N(-dF + s^2/2, s^2)), so the
    exact dF is known; 40 repeats.  If the reported sigma is right, z = (estimate - dF) / sigma is standard
    normal and the mean of z^2 lies within chi-squared bounds exceeded with probability 1e-5 (the seed is
    fixed, so the test is also deterministic).  With correlated works (rho = 0.8, statistical inefficiency
    9) the sigma BAR computes for independent works would fail the same bound; the sqrt(g) inflation
    brings it back."""
    rng = np.random.default_rng(20240611)
    dF, s, m = 2.0, 1.5, 40
    z, z_independent = [], []
    for _ in range(m):
        w_f = _ar1(rng, n, rho, dF + s * s / 2, s)
        w_r = _ar1(rng, n, rho, -dF + s * s / 2, s)
        analysis = neq_analysis(w_f, w_r, 300.0)
        z.append((analysis["estimate"].value_kT - dF) / analysis["estimate"].error_kT)
        z_independent.append((analysis["estimate"].value_kT - dF) / analysis["bar_error_independent_works_kT"])
    low, high = _mean_square_bounds(m)
    assert low < np.mean(np.square(z)) < high, np.mean(np.square(z))
    if rho > 0:
        assert np.mean(np.square(z_independent)) > high                       # the test can fail


def test_few_or_drifting_samples_are_insufficient():
    """Too few works, or works whose mean shifts half-way (end states not equilibrated): a shift shows as
    correlation (few effective samples); a large one also as halves that disagree beyond 4 sigma."""
    rng = np.random.default_rng(7)
    few = neq_analysis(rng.normal(2.5, 1.0, 10), rng.normal(-1.5, 1.0, 10), 300.0)
    assert any("effective (independent) samples" in p for p in sampling_problems(few, 20))
    for shift, message in ((1.0, "effective (independent) samples"), (4.0, "first and second halves")):
        w_f = np.concatenate([rng.normal(2.5, 1.0, 100), rng.normal(2.5 + shift, 1.0, 100)])
        w_r = np.concatenate([rng.normal(-1.5, 1.0, 100), rng.normal(-1.5 - shift, 1.0, 100)])
        problems = sampling_problems(neq_analysis(w_f, w_r, 300.0), 20 if shift == 1.0 else 0)
        assert any(message in p for p in problems), (shift, problems)
    steady = neq_analysis(rng.normal(2.5, 1.0, 200), rng.normal(-1.5, 1.0, 200), 300.0)
    assert sampling_problems(steady, 20) == []


@pytest.mark.slow
def test_workflow_sigma_covers_the_spread_of_seeds(tmp_path):
    """Eight NEQ runs of the harmonic system with different seeds: the spread of their estimates, and their
    distance from the exact answer, agree with the sigmas they report (chi-squared bounds at p = 1e-4)."""
    estimates, sigmas = [], []
    for seed in range(1, 9):
        # samples 1 ps apart (the wells relax in about 0.3 ps at this friction): nearly independent
        s = settings("neq", neq__n_switches=60, neq__switch_steps=20, neq__equilibration_steps=200,
                     neq__steps_between_samples=100, neq__samples_per_segment=60, neq__switches_per_segment=30)
        s.seed = seed
        result = run_endstate(harmonic_system("linear"), START, tmp_path / str(seed), s)
        assert result["status"] == "ok", result["sampling_problems"]
        estimates.append(result["estimate"]["kT"])
        sigmas.append(result["estimate"]["kT_error"])
    estimates, sigmas = np.array(estimates), np.array(sigmas)
    m = len(estimates)
    z2 = np.mean(((estimates - EXACT_KT) / sigmas) ** 2)
    assert chi2.ppf(1e-4, m) / m < z2 < chi2.isf(1e-4, m) / m, (estimates, sigmas)
    spread = np.var(estimates, ddof=1) / np.mean(sigmas ** 2)
    assert chi2.ppf(1e-4, m - 1) / (m - 1) < spread < chi2.isf(1e-4, m - 1) / (m - 1), (estimates, sigmas)


@requires_ani
@requires_ambertools
def test_fingerprint_tells_model_index_and_precision_apart(ani_single, ani_double):
    """The same build embedded again gives the same fingerprint (a resume is allowed); another network of the
    ensemble (--model-index) or another precision changes the ML force's entry (a resume is refused)."""
    from openmm_hybrid.forces.fingerprint import fingerprint_differences, system_fingerprint
    from openmm_hybrid.hybrid import create_hybrid_system
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.models import load_model
    built = build_system(ligand="CO", solvent="vacuum")

    def fingerprint(model):
        hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", model=model, interpolate=True)
        return system_fingerprint(hybrid.system)

    reference = fingerprint(ani_single)
    assert fingerprint(ani_single) == reference
    for other in (ani_double, load_model("ani2x", precision="single", model_index=0)):
        differences = fingerprint_differences(reference, fingerprint(other))
        assert differences == ["forces.5 TorchModuleForce 'MLPotential'"], differences
