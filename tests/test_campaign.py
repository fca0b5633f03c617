"""Free-energy campaigns on Dask: tiny systems, a two-worker LocalCluster.

The series: methanol, acetate (net charge -1) and chloromethane against alanine dipeptide as the
"protein", everything in vacuum, with a charge-aware toy TorchScript model (a harmonic well about
the centroid plus a charge term; H, C, N, O only, so chloromethane fails at its embedding).
Short switches: the numbers mean nothing physically; what is tested is that every way of
running the campaign (serial, two workers, a worker killed mid-unit, stopped and resumed, the
command line) computes the same numbers bit for bit, on the deterministic one-thread CPU
platform, and equals the single-ligand workflow ``run_binding_correction`` run with the ligand's
seed.
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from helpers import requires_ani
from openmm_hybrid._files import FolderLock
from openmm_hybrid.errors import CampaignError, FolderInUseError, FreeEnergyError, HybridError
from openmm_hybrid.freeenergy.campaign import load_campaign_settings, run_campaign, summarise
from openmm_hybrid.freeenergy.campaign.cluster import check_workers_see, connect, gpu_worker_specs, jobqueue_cluster
from openmm_hybrid.freeenergy.campaign.graph import make_graph, sample_block
from openmm_hybrid.freeenergy.campaign.seeds import ligand_seed
from openmm_hybrid.freeenergy.campaign.series import read_series, read_value_table
from openmm_hybrid.freeenergy.campaign.statistics import compare
from openmm_hybrid.testing import write_series_inputs

distributed = pytest.importorskip("distributed")

SEED = 11
LIGANDS = (("methanol", "CO"), ("acetate", "CC(=O)[O-]"), ("chloromethane", "CCl"))
TINY = ["build.solvent=vacuum", "ml.precision=double", "correction.simulation.platform=CPU",
        "correction.simulation.minimize_iterations=20", "correction.neq.n_switches=4",
        "correction.neq.switch_steps=10", "correction.neq.equilibration_steps=300",
        "correction.neq.steps_between_samples=5", "correction.neq.samples_per_segment=3",
        "correction.neq.switches_per_segment=2", "correction.min_overlap=0",
        # 4 switches cannot meet the statistical checks (test_sampling_status_is_flagged shows that they
        # flag it): these tests are about the mechanics, so the checks are off
        "correction.min_effective_samples=0", "execution.progress_interval_s=60",
        "report.bootstrap_samples=50", "report.plots=false"]


class ChargedToy(torch.nn.Module):
    """Harmonic well about the centroid plus a term in the net charge (kJ/mol); H, C, N, O."""

    supports_charge: bool
    supported_elements: List[int]

    def __init__(self):
        super().__init__()
        self.supports_charge = True
        self.supported_elements = [1, 6, 7, 8]

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        d = positions - positions.mean(0)
        return 200.0 * (d * d).sum() + 3.0 * total_charge * total_charge


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Model file, protein, series SDF (ligands 6 A above the dipeptide), MM and experimental tables."""
    folder = tmp_path_factory.mktemp("campaign-inputs")
    torch.jit.save(torch.jit.script(ChargedToy()), str(folder / "toy.pt"))
    write_series_inputs(folder, LIGANDS)
    write_series_inputs(folder, LIGANDS[:1], "methanol.sdf")
    (folder / "mm.csv").write_text("name,dG,dG_err\nmethanol,-3.0,0.2\nacetate,-5.5,0.3\nchloromethane,-2.0,0.1\n")
    (folder / "exp.csv").write_text("name,dG\nmethanol,-2.5\nacetate,-6.0\nchloromethane,-1.0\nunknown,-4.0\n")
    return folder


def tiny_settings(inputs, *extra):
    return load_campaign_settings(None, [f"seed={SEED}", f"ml.model={inputs / 'toy.pt'}", *TINY, *extra])


def run(inputs, out, **options):
    return run_campaign(inputs / "series.sdf", out, protein=inputs / "protein.pdb",
                        settings=options.pop("settings", None) or tiny_settings(inputs), mm_dg=inputs / "mm.csv",
                        experimental=inputs / "exp.csv", dashboard=False, **options)


def works(out) -> dict:
    """Every switch work of a campaign folder, by ligand and calculation."""
    found = {}
    for path in sorted(Path(out, "ligands").glob("*/*/results.json")):
        data = json.loads(path.read_text())
        found[(data["ligand"], data["calculation"])] = data["works_kT"]
    return found


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes.  allowed-failures 0: a task whose worker dies comes
    back as KilledWorker at once, so the tests exercise the campaign's own resubmission."""
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The campaign run serially in this process."""
    out = tmp_path_factory.mktemp("serial")
    return out, run(inputs, out, serial=True)


def test_serial_campaign_results(reference, inputs):
    out, summary = reference
    ligands = summary["ligands"]
    assert summary["status"] == "complete" and summary["counts"] == {"ok": 2, "failed": 1, "pending": 0, "other": 0}
    assert ligands["chloromethane"]["status"] == "failed"
    assert "embed complex: the ML region contains element(s) Cl that model" in ligands["chloromethane"]["reason"]
    # the charged ligand ran with the charge-aware model, its charge given to the model
    embed = json.loads((out / "ligands" / "acetate" / "complex" / "embed" / "embed.json").read_text())
    assert embed["region_net_charge"] == -1 and embed["model_supports_charge"]
    for name in ("methanol", "acetate"):
        record = ligands[name]
        assert record["status"] == "ok" and set(record["calculations"]) == {"complex", "solvent"}
        calcs = record["calculations"]
        assert record["correction"]["kT"] == calcs["complex"]["estimate"]["kT"] - calcs["solvent"]["estimate"]["kT"]
        assert record["ml_mm"]["kcal_per_mol"] == pytest.approx(record["mm"]["kcal_per_mol"]
                                                                + record["correction"]["kcal_per_mol"], abs=1e-9)
        assert record["error_ml_mm_kcal_per_mol"] == pytest.approx(record["ml_mm"]["kcal_per_mol"]
                                                                   - record["experimental"]["kcal_per_mol"], abs=1e-9)
        assert calcs["complex"]["n_forward"] == calcs["complex"]["n_reverse"] == 4
    assert summary["statistics"]["mm"]["n"] == 2 and summary["unmatched_table_names"] == ["unknown"]
    series = json.loads((out / "build" / "complex" / "series.json").read_text())
    assert [(e["name"], e["status"], e["net_charge"]) for e in series["ligands"]] == [
        ("methanol", "ok", 0), ("acetate", "ok", -1), ("chloromethane", "ok", 0)]
    rows = (out / "campaign.csv").read_text().splitlines()
    assert rows[0].startswith("name,status,dF_complex_kcal") and len(rows) == 4
    text = summarise(out)
    assert "2 ok, 1 failed" in text and "chloromethane failed: embed complex" in text and "Kendall tau" in text


def test_serial_campaign_equals_single_binding_run(reference, inputs, tmp_path):
    """Each calculation is the single-run workflow run with the ligand's seed, bit for bit."""
    from openmm_hybrid.freeenergy.binding import run_binding_correction
    from openmm_hybrid.freeenergy.settings import EndstateSettings, from_dict, to_dict
    out, summary = reference
    correction = to_dict(tiny_settings(inputs).correction)
    single = from_dict(EndstateSettings, {**correction, "seed": ligand_seed(SEED, "methanol")})
    folder = out / "ligands" / "methanol"
    result = run_binding_correction(folder / "complex" / "embed", folder / "solvent" / "embed", tmp_path, single)
    assert result["estimate"]["kT"] == summary["ligands"]["methanol"]["correction"]["kT"]
    for phase in ("complex", "solvent"):
        single_works = json.loads((tmp_path / phase / "results.json").read_text())["works_kT"]
        assert single_works == works(out)[("methanol", phase)]


def test_mbar_campaign_equals_single_binding_run(inputs, tmp_path):
    """--method mbar: one unit per lambda window, the same numbers as the single-ligand workflow.

    The toy model's windows do not overlap: both report it (the ligand's status says so) and
    give the same estimate anyway."""
    from openmm_hybrid.errors import InsufficientOverlapError
    from openmm_hybrid.freeenergy.binding import run_binding_correction
    from openmm_hybrid.freeenergy.settings import EndstateSettings, from_dict, to_dict
    settings = tiny_settings(inputs, "correction.method=mbar", "correction.mbar.lambdas=[0.0, 0.5, 1.0]",
                             "correction.mbar.equilibration_steps=20", "correction.mbar.n_samples=6",
                             "correction.mbar.steps_between_samples=5", "correction.mbar.samples_per_segment=4",
                             "correction.min_overlap=0.1")
    summary = run_campaign(inputs / "methanol.sdf", tmp_path / "campaign", protein=inputs / "protein.pdb",
                           settings=settings, serial=True)
    folder = tmp_path / "campaign" / "ligands" / "methanol"
    assert sorted(u.name for u in (folder / "complex" / "units").iterdir()) == \
        ["window00.0.npz", "window01.0.npz", "window02.0.npz"]
    record = summary["ligands"]["methanol"]
    assert record["status"] == "insufficient_overlap" and summary["counts"]["other"] == 1
    single = from_dict(EndstateSettings, {**to_dict(settings.correction), "seed": ligand_seed(SEED, "methanol")})
    with pytest.raises(InsufficientOverlapError):
        run_binding_correction(folder / "complex" / "embed", folder / "solvent" / "embed", tmp_path / "single",
                               single)
    complex_single = json.loads((tmp_path / "single" / "complex" / "results.json").read_text())
    assert json.dumps(complex_single["estimate"]) == json.dumps(record["calculations"]["complex"]["estimate"])


def test_two_workers_equal_serial(reference, inputs, client, tmp_path):
    settings = tiny_settings(inputs, "report.plots=true")
    summary = run(inputs, tmp_path, client=client, settings=settings)
    assert works(tmp_path) == works(reference[0]) and len(works(tmp_path)) == 4
    for name, record in reference[1]["ligands"].items():  # (as JSON: a NaN error equals itself)
        assert json.dumps(summary["ligands"][name].get("correction")) == json.dumps(record.get("correction"))
    pids = {r["pid"] for r in map(json.loads, (tmp_path / "execution.jsonl").read_text().splitlines())}
    assert os.getpid() not in pids and len(pids) == 2  # ran on both workers, not here
    for name in ("corrections.png", "predicted_vs_experimental.png", "work_distributions.png", "overlap.png"):
        assert (tmp_path / "plots" / name).is_file()


def _kill_a_worker_mid_unit(client, out, killed, stop):
    """Wait until an equilibration unit runs on a worker, then SIGKILL that worker's process."""
    while not stop.is_set() and not killed:
        executing = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
        for worker, keys in executing.items():
            unit = next((k.split(":", 1)[1].split("#")[0] for k in keys if "equilibrium_0.0" in k), None)
            if unit is None:
                continue
            ligand, calc, stage = unit.split("/")
            result = Path(out, "ligands", ligand, calc, "units", stage + ".npz")
            pid = client.run(os.getpid, workers=[worker])[worker]
            if not result.exists():
                os.kill(pid, 9)
                killed.append((unit, pid, result.exists()))
                return
        time.sleep(0.02)


def test_worker_killed_mid_unit(reference, inputs, client, tmp_path):
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_a_worker_mid_unit, args=(client, tmp_path, killed, stop), daemon=True)
    killer.start()
    try:
        summary = run(inputs, tmp_path, client=client)
    finally:
        stop.set()
        killer.join(10)
    assert killed, "no equilibration unit was caught running"
    unit, pid, finished_before = killed[0]
    assert not finished_before
    records = [json.loads(line) for line in (tmp_path / "execution.jsonl").read_text().splitlines()]
    rerun = [r for r in records if r["unit"] == unit]
    assert len(rerun) == 1 and rerun[0]["pid"] != pid and rerun[0]["attempt"] == 2  # ran again, elsewhere, once
    assert summary["execution"]["units_resubmitted"] >= 1
    assert works(tmp_path) == works(reference[0])  # nothing lost, nothing counted twice
    client.wait_for_workers(2, timeout=60)


def test_stop_and_resume_on_the_command_line(reference, inputs, client, tmp_path, capsys):
    """--stop-after-units, then the same command: the finished units are kept, the numbers equal."""
    from openmm_hybrid.cli import main
    address = client.scheduler.address
    argv = ["fe", "campaign", "--protein", str(inputs / "protein.pdb"), "--ligands", str(inputs / "series.sdf"),
            "--mm-dg", str(inputs / "mm.csv"), "--experimental", str(inputs / "exp.csv"), "--out", str(tmp_path),
            "--scheduler", address, "--seed", str(SEED), "--model", str(inputs / "toy.pt")]
    argv += [a for item in TINY for a in ("--set", item)]
    with pytest.raises(SystemExit) as stopped:
        main(argv + ["--stop-after-units", "12"])
    assert stopped.value.code == 3
    assert "run the same command again to resume" in capsys.readouterr().err
    done_before = len((tmp_path / "execution.jsonl").read_text().splitlines())
    assert main(["fe", "report", str(tmp_path)]) == 0
    assert "incomplete" in capsys.readouterr().out
    with pytest.raises(SystemExit) as finished:
        main(argv)
    assert finished.value.code == 4  # chloromethane failed
    execution = json.loads((tmp_path / "campaign.json").read_text())["execution"]
    # 12 units logged by the stopped run, one of them possibly chloromethane's build (not counted
    # among the units of running ligands); units cancelled at the stop may have finished too
    assert done_before == 12 and execution["units_done_before"] >= 11
    # a unit cancelled at the stop keeps running on an external scheduler and may finish after the
    # resumed run submitted it again (at most one per worker): computed twice, published once
    extra = execution["units_computed_this_run"] - (execution["units_total"] - execution["units_done_before"])
    assert 0 <= extra <= len(client.scheduler_info()["workers"])
    assert works(tmp_path) == works(reference[0])


def test_concurrent_run_refused(inputs, tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(FolderInUseError, match=rf"the campaign folder '{tmp_path}' is in use by another "
                                                   rf"openmm-hybrid process \(process {os.getpid()} on "):
            run(inputs, tmp_path, serial=True)
    # another process holding the flock (plain fcntl, so that it starts fast), as a running campaign does
    lock_file = tmp_path.parent / f".{tmp_path.name}.lock"
    script = (f"import fcntl, json, os, time\n"
              f"fd = os.open({str(lock_file)!r}, os.O_RDWR | os.O_CREAT)\n"
              f"fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
              f"os.write(fd, json.dumps({{'host': 'elsewhere', 'pid': os.getpid(), 'command': 'x'}}).encode())\n"
              f"print('locked', flush=True); time.sleep(30)")
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUseError, match=rf"in use by another openmm-hybrid process \(process {other.pid} "
                                                   rf"on elsewhere"):
            run(inputs, tmp_path, serial=True)
    finally:
        other.kill()
        other.wait()
    FolderLock(tmp_path).acquire().release()  # the lock went with the killed process


def test_refusals(reference, inputs, tmp_path):
    out, _ = reference
    # (the fingerprint check is freeenergy.checkpoint.Checkpoint's: HybridError, whichever subclass)
    with pytest.raises(HybridError, match=r"holds a checkpoint of a different run \(differs in: "
                                          r"settings.correction.neq.n_switches\)"):
        run(inputs, out, serial=True, settings=tiny_settings(inputs, "correction.neq.n_switches=6"))
    with pytest.raises(CampaignError, match="a binding campaign needs the protein"):
        run_campaign(inputs / "series.sdf", tmp_path / "a", settings=tiny_settings(inputs), serial=True)
    with pytest.raises(CampaignError, match="--mm-dg gives MM binding free energies; a hydration campaign"):
        run_campaign(inputs / "series.sdf", tmp_path / "b", mm_dg=inputs / "mm.csv", hydration=True, serial=True)
    with pytest.raises(CampaignError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        connect("tcp://127.0.0.1:9", timeout_s=1)
    (tmp_path / "twice.smi").write_text("CO methanol\nCCO methanol\n")
    with pytest.raises(CampaignError, match=r"records 1 and 2 are both named 'methanol'"):
        read_series(tmp_path / "twice.smi")
    (tmp_path / "bad.csv").write_text("name,dG\nmethanol,-3.0\nethanol,minus two\n")
    with pytest.raises(CampaignError, match=r"'.*bad.csv', data line 2 \(ethanol\): dG 'minus two' is not a number"):
        read_value_table(tmp_path / "bad.csv", "MM binding free energies")
    (tmp_path / "header.csv").write_text("ligand,value\nmethanol,-3.0\n")
    with pytest.raises(CampaignError, match=r"needs a header line with the columns name,dG\[,dG_err\]"):
        read_value_table(tmp_path / "header.csv", "experimental free energies")
    with pytest.raises(FreeEnergyError, match=r"setting 'ml.mts_substeps' must be at least 1"):
        tiny_settings(inputs, "ml.mts_substeps=0")


def test_series_input(tmp_path):
    (tmp_path / "series.smi").write_text("# a comment\nCO methanol\nC1CC broken ring\nCCO\n")
    entries = read_series(tmp_path / "series.smi")
    assert [(e.name, e.usable) for e in entries] == [("methanol", True), ("broken_ring", False), ("ligand-3", True)]
    assert "C1CC" in entries[1].error
    with pytest.raises(CampaignError, match=r"unsupported format '.txt': use a multi-molecule SDF"):
        (tmp_path / "series.txt").write_text("CO\n")
        read_series(tmp_path / "series.txt")


def test_graph_switch_batches_wait_only_for_their_samples(inputs):
    settings = tiny_settings(inputs, "correction.neq.n_switches=7", "correction.neq.samples_per_segment=3",
                             "correction.neq.switches_per_segment=2")
    graph = make_graph(["x"], {"x": 5}, settings, hydration=False)
    assert [sample_block(i, [3, 3, 1]) for i in range(7)] == [1, 1, 1, 2, 2, 2, 3]
    units = graph.units
    assert units["x/complex/forward.1"].deps == ("x/complex/equilibrium_0.1", "x/complex/equilibrium_0.2")
    assert units["x/complex/reverse.3"].deps == ("x/complex/equilibrium_1.3",)
    assert units["x/complex/equilibrium_1.0"].deps == ("x/complex/equilibrium_0.3",)
    assert units["x/complex/embed"].deps == ("x/build",)
    assert len(units["x/complex/analysis"].deps) == 8 and units["x/complex/forward.3"].steps == 1 * 9


def test_statistics_against_hand_computed_values():
    experimental = {"a": (-1.0, 0.0), "b": (-2.0, 0.0), "c": (-3.0, 0.0), "d": (-4.0, 0.0)}
    predicted = {"a": (-1.5, 0.0), "b": (-2.0, 0.0), "c": (-2.0, 0.0), "d": (-5.0, 0.0), "e": (0.0, 0.0)}
    result = compare(predicted, experimental, bootstrap_samples=200, seed=1)
    assert result["n"] == 4 and result["ligands"] == ["a", "b", "c", "d"]
    assert result["mae"]["value"] == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert result["rmse"]["value"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    # pairs: 5 concordant, none discordant, (b, c) tied in the prediction: tau-b = 5 / sqrt(6 * 5)
    assert result["kendall_tau"]["value"] == pytest.approx(5 / np.sqrt(30))
    for key in ("mae", "rmse"):
        assert result[key]["low"] <= result[key]["value"] <= result[key]["high"]
    assert compare(predicted, {"z": (1.0, 0.1)}) is None


def test_workers_must_see_the_campaign_folder(client, tmp_path):
    check_workers_see(client, tmp_path)
    with pytest.raises(CampaignError, match=r"Dask worker\(s\) tcp://.* cannot see the campaign folder "
                                            r"'/nonexistent/campaign': .* a file system they share"):
        check_workers_see(client, "/nonexistent/campaign")


def test_cluster_configurations(tmp_path):
    pytest.importorskip("dask_jobqueue")
    specs = gpu_worker_specs(["0", "3"])
    assert {name: spec["options"]["env"]["CUDA_VISIBLE_DEVICES"] for name, spec in specs.items()} == \
        {"gpu-0": "0", "gpu-3": "3"}
    assert all(spec["options"]["nthreads"] == 1 for spec in specs.values())
    config = tmp_path / "slurm.yaml"
    config.write_text("cores: 1\nmemory: 8GB\nprocesses: 1\nqueue: gpu\nwalltime: '04:00:00'\n"
                      "job_extra_directives: ['--gres=gpu:1']\njobs: 4\nscheduler_options: {dashboard_address: null}\n")
    cluster = jobqueue_cluster("slurm", config, start=False)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH --gres=gpu:1" in script and "--nthreads 1" in script
    config.write_text("cores: 1\nmemory: 8GB\nsockets: 2\njobs: 1\n")
    with pytest.raises(CampaignError, match=r"(?s)cluster configuration file '.*slurm.yaml': .*sockets.*; its keys "
                                            r"are dask-jobqueue's SLURMCluster arguments"):
        jobqueue_cluster("slurm", config, start=False)
    config.write_text("cores: 1\nmemory: 8GB\n")
    with pytest.raises(CampaignError, match=r"say how many batch jobs to run, 'jobs: N' or 'adapt"):
        jobqueue_cluster("slurm", config)
    with pytest.raises(CampaignError, match=r"--cluster pbs needs --cluster-config FILE"):
        jobqueue_cluster("pbs", None)


HYDRATION = ["build.padding_nm=0.55", "build.nonbonded_cutoff_nm=0.5", "build.box_shape=cube",
             "simulation.platform=CPU", "simulation.pressure_bar=null", "simulation.minimize_iterations=20",
             "alchemical.electrostatics_lambdas=[1.0, 0.0]", "alchemical.sterics_lambdas=[1.0, 0.5, 0.0]",
             "alchemical.solvent={equilibration_steps: 20, n_samples: 6, steps_between_samples: 5, "
             "samples_per_segment: 3}",
             "alchemical.vacuum={equilibration_steps: 20, n_samples: 6, steps_between_samples: 5, "
             "samples_per_segment: 3}",
             "correction.simulation.platform=CPU", "correction.simulation.pressure_bar=null",
             "correction.simulation.minimize_iterations=20", "correction.neq.n_switches=4",
             "correction.neq.switch_steps=10", "correction.neq.equilibration_steps=20",
             "correction.neq.steps_between_samples=5", "correction.neq.samples_per_segment=2",
             "correction.neq.switches_per_segment=2", "correction.min_overlap=0", "report.bootstrap_samples=20"]


@pytest.mark.slow
@requires_ani
def test_hydration_campaign_with_ani2x_equals_run_hydration(client, tmp_path):
    """Hydration free energies of a series on two workers: each molecule's MM legs and ANI-2x
    corrections equal ``run_hydration`` with the molecule's seed; a charged molecule is reported."""
    from openmm_hybrid.freeenergy import run_hydration
    from openmm_hybrid.freeenergy.settings import HydrationSettings, from_dict, to_dict
    (tmp_path / "molecules.smi").write_text("CO methanol\nCC(=O)[O-] acetate\nCC ethane\n")
    settings = load_campaign_settings(None, [f"seed={SEED}", "ml.model=ani2x", "ml.model_index=0", *HYDRATION])
    (tmp_path / "exp.csv").write_text("name,dG,dG_err\nmethanol,-5.1,0.1\nethane,1.8,0.1\n")
    summary = run_campaign(tmp_path / "molecules.smi", tmp_path / "campaign", settings=settings, hydration=True,
                           experimental=tmp_path / "exp.csv", client=client, dashboard=False)
    assert summary["ligands"]["acetate"]["status"] == "failed"
    assert "net charge -1 e; absolute hydration free energies of charged molecules" in \
        summary["ligands"]["acetate"]["reason"]
    entry = read_series(tmp_path / "molecules.smi")[0]
    data = to_dict(settings)
    single = from_dict(HydrationSettings, {key: data[key] for key in ("build", "simulation", "alchemical", "ml",
                                                                       "correction")}
                       | {"seed": ligand_seed(SEED, "methanol"),
                          "build": {k: v for k, v in data["build"].items()
                                    if k not in ("solvent", "ionic_strength_molar", "ph")},
                          "ml": {k: v for k, v in data["ml"].items() if k not in ("model_options", "mts_substeps")}})
    reference = run_hydration(entry.ligand, tmp_path / "single", single)
    record = summary["ligands"]["methanol"]
    # tiny runs may be flagged (freeenergy.outcome); the campaign flags exactly what the single run does
    assert record["status"] == reference["status"] and record["status"] in ("ok", "insufficient_sampling")
    assert record["mm"] == reference["estimate"]["mm"] and record["ml_mm"] == reference["estimate"]["ml_mm"]
    # the statistics count the ligands whose status is ok (a flagged estimate is reported, not counted)
    ok = [n for n in ("methanol", "ethane") if summary["ligands"][n]["status"] == "ok"]
    assert summary["statistics"].get("ml_mm", {"n": len(ok)})["n"] == len(ok)
    assert ("ml_mm" in summary["statistics"]) == bool(ok)


def test_multiple_time_steps(inputs, tmp_path):
    """ml.mts_substeps: MTS-ready embedding, every sampling and switching step a BAOAB-RESPA step."""
    settings = tiny_settings(inputs, "ml.mts_substeps=2", "correction.neq.n_switches=2",
                             "correction.neq.samples_per_segment=2", "correction.neq.equilibration_steps=20")
    summary = run_campaign(inputs / "methanol.sdf", tmp_path, protein=inputs / "protein.pdb", settings=settings,
                           serial=True)
    assert summary["ligands"]["methanol"]["status"] == "ok"
    embed = json.loads((tmp_path / "ligands" / "methanol" / "complex" / "embed" / "embed.json").read_text())
    assert embed["mts_ready"] and embed["force_groups"]["slow"] == 1
    records = [json.loads(line) for line in (tmp_path / "execution.jsonl").read_text().splitlines()]
    sampling = [r for r in records if "integrator" in r]
    assert len(sampling) == 2 * (2 * 2 + 2 * 1)  # both phases: 2 x (1 + 1) equilibrium blocks, 2 x 1 batch
    assert {(r["integrator"], r["platform"]) for r in sampling} == {("RESPAIntegrator", "CPU")}


@pytest.mark.slow
@requires_ani
def test_binding_campaign_with_ani2x(inputs, client, tmp_path):
    """ANI-2x: chloromethane runs (Cl is an ANI-2x element) and equals the single-ligand workflow;
    acetate is refused (ANI-2x is for neutral molecules), with the reason, and the rest completes."""
    from openmm_hybrid.freeenergy.binding import run_binding_correction
    from openmm_hybrid.freeenergy.settings import EndstateSettings, from_dict, to_dict
    settings = tiny_settings(inputs, "ml.model=ani2x", "ml.precision=single")
    summary = run(inputs, tmp_path / "campaign", client=client, settings=settings)
    ligands = summary["ligands"]
    assert {ligands["chloromethane"]["status"], ligands["methanol"]["status"]} <= {"ok", "insufficient_sampling"}
    assert ligands["acetate"]["status"] == "failed"
    assert "net charge -1 e, but model 'ani2x' is for neutral molecules only" in ligands["acetate"]["reason"]
    single = from_dict(EndstateSettings, {**to_dict(settings.correction), "seed": ligand_seed(SEED, "chloromethane")})
    folder = tmp_path / "campaign" / "ligands" / "chloromethane"
    result = run_binding_correction(folder / "complex" / "embed", folder / "solvent" / "embed", tmp_path / "single",
                                    single)
    assert result["estimate"] == ligands["chloromethane"]["correction"]
    assert result["status"] == ligands["chloromethane"]["status"]


@pytest.mark.slow
def test_sigterm_stops_the_campaign_and_the_same_command_resumes(inputs, tmp_path):
    """SIGTERM to ``fe campaign``: exit status 3 with how to resume; the rerun completes."""
    import signal
    command = [sys.executable, "-c", "import sys; from openmm_hybrid.cli import main; sys.exit(main(sys.argv[1:]))",
               "fe", "campaign", "--protein", str(inputs / "protein.pdb"),
               "--ligands", str(inputs / "methanol.sdf"), "--out", str(tmp_path), "--serial", "--seed", str(SEED),
               "--model", str(inputs / "toy.pt")] + [a for item in TINY for a in ("--set", item)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "execution.jsonl"
    deadline = time.time() + 120
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3) and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err[-2000:]
    assert "campaign stopped (stopped by a signal)" in err and "run the same command again to resume" in err
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert json.loads((tmp_path / "campaign.json").read_text())["counts"]["ok"] == 1


@pytest.mark.slow
def test_local_cluster_gives_each_gpu_worker_its_own_device():
    """The per-GPU local cluster started for real (the device ids are only environment here)."""
    from openmm_hybrid.freeenergy.campaign.cluster import local_cluster
    cluster = local_cluster(dashboard=False, gpus=["0", "1"])
    client = distributed.Client(cluster)
    try:
        devices = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        threads = client.run(lambda dask_worker: dask_worker.state.nthreads)
    finally:
        client.close()
        cluster.close()
    assert sorted(devices.values()) == ["0", "1"] and set(threads.values()) == {1}


def test_sampling_status_is_flagged(reference, inputs, tmp_path):
    """With the statistical checks on, 4 switches per direction are too few: every ligand that ran is
    flagged insufficient_sampling, as the single-run workflows flag it, and the exit status says so."""
    out = run(inputs, tmp_path / "flagged", serial=True,
              settings=tiny_settings(inputs, "correction.min_effective_samples=20"))
    records = json.loads((tmp_path / "flagged" / "campaign.json").read_text())["ligands"]
    flagged = {name for name, r in records.items() if r["status"] == "insufficient_sampling"}
    assert flagged and flagged == {name for name, r in records.items() if r["status"] != "failed"}
    assert out["counts"]["other"] == len(flagged)
