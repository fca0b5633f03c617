"""A four-ligand mini campaign on Dask with 1 and 2 workers: wall time, speed-up, per-step costs.

The series: methanol, ethanol, acetone and methylamine, placed 6 A above alanine dipeptide (the
"protein"), in vacuum; ANI-2x (float32) as the ML model, mechanical embedding; end-state
corrections of both phases by NEQ (``--n-switches`` forward and reverse switches of
``--switch-steps`` steps per phase).  For each worker count a fresh ``LocalCluster`` (one thread
per worker process) is started and warmed (openmm-hybrid imported, ANI-2x weights read) before
the clock starts; the timed part is ``run_campaign`` from the series file to ``campaign.json``
(builds with the ligand parameter cache warm, embeddings, sampling, analyses).  Rounds alternate
the worker counts; the load average before and after each run is recorded (other jobs on the
machine inflate and skew the times: run it on a quiet machine).

From the units' wall times (``execution.jsonl``) the script also reports the cost of one
equilibrium MD step and of one switching step (an MD step plus the work increment, which
evaluates the lambda-dependent forces, the ML force among them, once more): the ratio is what
turns the MD step costs measured on a GPU (benchmarks/results/bench_mechanical.md, bench_mts.md)
into the cost of a campaign (docs/campaigns.md).

Example (the numbers in benchmarks/results/bench_campaign.md)::

    nice python benchmarks/bench_campaign.py --out /tmp/bench-campaign --json bench_campaign.json

Small settings to check the script: ``--n-switches 4 --switch-steps 20 --rounds 1``.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from openmm_hybrid.testing import write_series_inputs

LIGANDS = (("methanol", "CO"), ("ethanol", "CCO"), ("acetone", "CC(C)=O"), ("methylamine", "CN"))


def warm_worker() -> int:
    """Import openmm-hybrid and read the ANI-2x weights in a worker (not part of the timing)."""
    from openmm_hybrid.models import load_model
    load_model("ani2x")
    return os.getpid()


def settings_overrides(args) -> list:
    return [f"seed={args.seed}", "build.solvent=vacuum", "ml.model=ani2x", "ml.precision=single",
            "correction.simulation.platform=CPU", "correction.simulation.minimize_iterations=100",
            f"correction.neq.n_switches={args.n_switches}", f"correction.neq.switch_steps={args.switch_steps}",
            f"correction.neq.equilibration_steps={args.equilibration_steps}",
            f"correction.neq.steps_between_samples={args.steps_between_samples}",
            "correction.neq.samples_per_segment=4", "correction.neq.switches_per_segment=2",
            "correction.min_overlap=0", "report.plots=false", "execution.progress_interval_s=60"]


def timed_run(args, workers: int, out: Path) -> dict:
    import distributed
    from openmm_hybrid.freeenergy.campaign import load_campaign_settings, run_campaign
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        client.run(warm_worker)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        summary = run_campaign(args.inputs / "series.sdf", out, protein=args.inputs / "protein.pdb",
                               settings=load_campaign_settings(None, settings_overrides(args)), client=client,
                               dashboard=False)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
    finally:
        client.close()
        cluster.close()
    records = [json.loads(line) for line in (out / "execution.jsonl").read_text().splitlines()]
    per_step = {}  # equilibrium blocks after the first (which also minimises), switch batches
    for kind, marks in (("equilibrium", ("/equilibrium_",)), ("switches", ("/forward.", "/reverse."))):
        rates = [r["seconds"] / r["steps"] for r in records
                 if any(m in r["unit"] for m in marks) and r["steps"] and not r["unit"].endswith("_0.0")
                 and not r["unit"].endswith("_1.0")]
        per_step[kind] = 1000 * statistics.median(rates) if rates else None
    ok = [n for n, r in summary["ligands"].items() if r["status"] == "ok"]
    return {"workers": workers, "wall_s": wall, "unit_seconds": sum(r["seconds"] for r in records),
            "units": len(records), "load_before": load_before, "load_after": load_after, "ligands_ok": ok,
            "ms_per_md_step": per_step["equilibrium"], "ms_per_switch_step": per_step["switches"],
            "corrections_kT": {n: summary["ligands"][n]["correction"]["kT"] for n in ok}}


def step_costs(embed_folder: Path, steps: int = 200, repeats: int = 3) -> dict:
    """ms per MD step, per switching step and per Context reset of one embedded System, in this
    process on one CPU thread (the deterministic CPU platform the campaign used)."""
    import torch
    from openmm_hybrid.embeddings.interpolation import INTERPOLATION_PARAMETER as LAMBDA
    from openmm_hybrid.freeenergy.endstate import box_nm, positions_nm
    from openmm_hybrid.freeenergy.protocols import run_switch_segment, switch_path
    from openmm_hybrid.freeenergy.sampler import ChainState, StateSampler
    from openmm_hybrid.freeenergy.settings import SimulationSettings
    from openmm_hybrid.mm.system_files import load_build
    torch.set_num_threads(1)
    built = load_build(embed_folder)
    sampler = StateSampler(built.system, [LAMBDA], SimulationSettings(platform="CPU", pressure_bar=None))
    start = ChainState(positions_nm(built.positions), None, box_nm(built.system))
    sampler.start_segment(start, 1, {LAMBDA: 0.0})
    sampler.check_linearity(LAMBDA)
    sampler.step(steps)  # warm
    state = sampler.chain_state()
    md, switch, reset = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sampler.start_segment(state, 2, {LAMBDA: 0.0})
        reset.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sampler.step(steps)
        md.append((time.perf_counter() - t0) / steps)
        t0 = time.perf_counter()
        run_switch_segment(sampler, LAMBDA, switch_path(steps, "forward"), [state], 3)
        switch.append((time.perf_counter() - t0 - reset[-1]) / steps)
    return {"system": str(embed_folder), "ms_per_md_step": 1000 * statistics.median(md),
            "ms_per_switch_step": 1000 * statistics.median(switch),
            "ms_per_context_reset": 1000 * statistics.median(reset),
            "load_average": os.getloadavg()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder (campaign folders, inputs)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n-switches", type=int, default=8)
    parser.add_argument("--switch-steps", type=int, default=200)
    parser.add_argument("--equilibration-steps", type=int, default=500)
    parser.add_argument("--steps-between-samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, default=None, help="write the measurements here")
    args = parser.parse_args(argv)
    args.inputs = args.out / "inputs"
    write_series_inputs(args.inputs, LIGANDS)
    runs = []
    for round_index in range(args.rounds):
        for workers in (int(w) for w in args.workers.split(",")):
            result = timed_run(args, workers, args.out / f"round{round_index}-workers{workers}")
            print(f"round {round_index}: {workers} worker(s): {result['wall_s']:.1f} s wall, "
                  f"{result['unit_seconds']:.1f} s in units, load {result['load_before'][0]:.2f} -> "
                  f"{result['load_after'][0]:.2f}", file=sys.stderr, flush=True)
            runs.append(result)
    best = {}
    for r in runs:
        best[r["workers"]] = min(best.get(r["workers"], float("inf")), r["wall_s"])
    base = best.get(1)
    report = {"machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
              "versions": _versions(), "settings": settings_overrides(args), "runs": runs,
              "best_wall_s": best, "speedup": {w: base / t for w, t in best.items()} if base else {},
              "command": " ".join(sys.argv)}
    identical = len({json.dumps(r["corrections_kT"], sort_keys=True) for r in runs}) == 1
    report["identical_results_across_runs"] = identical
    embed = args.out / f"round0-workers{runs[0]['workers']}" / "ligands" / "methanol" / "complex" / "embed"
    report["step_costs"] = step_costs(embed)
    print(json.dumps({k: report[k] for k in ("best_wall_s", "speedup", "identical_results_across_runs",
                                             "step_costs")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict:
    from importlib.metadata import version
    return {name: version(name) for name in ("openmm", "torch", "dask", "distributed", "pymbar")}


if __name__ == "__main__":
    main()
