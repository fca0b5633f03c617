"""A charged ligand in water with a charge-aware published family (AIMNet2, a small random
instance in its published format), through the whole command line: build -> embed (mechanical,
``--interpolate --mts-ready``) -> run --mts -> fe endstate (tiny settings); and a neutral ligand
with a deployed NequIP file (neutral-only family), its units given with ``--model-option``.
Slow tier."""
import json
import math
import os

import pytest

from helpers import requires_ambertools
from openmm_hybrid.cli import main
from openmm_hybrid.models.model_files import MODEL_DIR_VARIABLE


def energy_run_and_endstate(embed, run, fe, capsys):
    """``energy`` (finite parts), ``run --mts 2`` and a tiny NEQ ``fe endstate`` of an embedded
    folder; returns the end-state results and what ``fe`` printed.  No warm-up: a random model is
    not a physical potential and may pull a molecule apart within a warm-up's hundreds of steps
    (the warm-up and the blow-up detector are tested in test_warmup.py and test_run_robustness.py)."""
    capsys.readouterr()
    assert main(["--quiet", "energy", "--input", str(embed), "--platform", "CPU"]) == 0
    energies = json.loads(capsys.readouterr().out)
    assert all(math.isfinite(v) for v in energies.values() if isinstance(v, float))
    assert main(["--quiet", "run", "--input", str(embed), "--steps", "20", "--mts", "2", "--report-interval", "10",
                 "--minimize-iterations", "20", "--warmup-steps", "0", "--platform", "CPU", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["--quiet", "fe", "endstate", "--input", str(embed), "--method", "neq", "--seed", "5",
                 "--platform", "CPU", "--out", str(fe),
                 "--set", "neq.n_switches=4", "--set", "neq.switch_steps=5", "--set", "neq.equilibration_steps=10",
                 "--set", "neq.steps_between_samples=5", "--set", "neq.samples_per_segment=4",
                 "--set", "neq.switches_per_segment=4", "--set", "simulation.minimize_iterations=20",
                 "--set", "simulation.pressure_bar=null", "--set", "min_overlap=0.0"]) == 0
    return json.loads((fe / "results.json").read_text()), capsys.readouterr().out


@pytest.mark.slow
@requires_ambertools
def test_charged_ligand_in_water_with_aimnet2(tmp_path, monkeypatch, capsys):
    pytest.importorskip("aimnet", reason="aimnet is not installed (pip install .[test])")
    from openmm_hybrid.testing import write_random_aimnet2
    models = tmp_path / "models"
    models.mkdir()
    # the published name's file, found offline through OPENMM_HYBRID_MODEL_DIR
    write_random_aimnet2(models / "aimnet2_wb97m_d3_0.pt")
    monkeypatch.setenv(MODEL_DIR_VARIABLE, str(models))
    build, embed, run, fe = (tmp_path / name for name in ("build", "embed", "run", "fe"))
    assert main(["--quiet", "build", "--ligand", "CC(=O)[O-]", "--solvent", "explicit", "--padding", "1.0",
                 "--out", str(build)]) == 0
    assert json.loads((build / "build.json").read_text())["ligand"]["net_charge"] == -1
    assert main(["--quiet", "embed", "--input", str(build), "--model", "aimnet2", "--precision", "single",
                 "--interpolate", "--mts-ready", "--out", str(embed)]) == 0
    info = json.loads((embed / "embed.json").read_text())
    assert info["region_net_charge"] == -1 and info["model_supports_charge"] is True
    result, fe_output = energy_run_and_endstate(embed, run, fe, capsys)
    assert json.loads((run / "run.json").read_text())["scheme"] != "single time step"
    # the estimate is reported and finite; with 4 switches of a random model the forward and
    # reverse work distributions do not overlap, so its BAR error may be undefined (NaN)
    assert math.isfinite(result["estimate"]["kT"])
    assert "dF(MM -> ML/MM) =" in fe_output
    assert os.path.isfile(fe / "settings.yaml")


@pytest.mark.slow
@requires_ambertools
def test_neutral_ligand_in_water_with_a_deployed_nequip_model(tmp_path, capsys):
    """A NequIP deployed file (neutral-only: ethanol) through the same commands, its units given with
    --model-option: the module runs inside OpenMM (frozen by TorchModuleForce) in every step."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # nequip 0.6's e3nn 0.4.4
    nequip = pytest.importorskip("nequip", reason="nequip is not installed (pip install .[test])")
    if not nequip.__version__.startswith(("0.5.", "0.6.")):
        pytest.skip(f"nequip-deploy files are written by nequip < 0.7 (this is {nequip.__version__})")
    from openmm_hybrid.testing import write_random_nequip
    model = write_random_nequip(tmp_path / "deployed.pth")
    build, embed, run, fe = (tmp_path / name for name in ("build", "embed", "run", "fe"))
    assert main(["--quiet", "build", "--ligand", "CCO", "--solvent", "explicit", "--padding", "1.0",
                 "--out", str(build)]) == 0
    assert main(["--quiet", "embed", "--input", str(build), "--model", str(model), "--precision", "single",
                 "--model-option", "length_scale=0.1", "--model-option", "energy_scale=96.48533212331002",
                 "--interpolate", "--mts-ready", "--out", str(embed)]) == 0
    assert json.loads((embed / "embed.json").read_text())["model_supports_charge"] is False
    result, _ = energy_run_and_endstate(embed, run, fe, capsys)
    assert math.isfinite(result["estimate"]["kT"])
