"""Hydration free energies, MM (GAFF2/AM1-BCC + TIP3P) and ML/MM (ANI-2x, mechanical
embedding), against experiment.

Experimental values and uncertainties: FreeSolv database (Mobley & Guthrie, J. Comput.
Aided Mol. Des. 28, 711-720 (2014), doi:10.1007/s10822-014-9747-x), file ``database.txt``
v0.31 (2014-09-25) of https://github.com/MobleyLab/FreeSolv, which also lists the Mobley
group's GAFF/AM1-BCC/TIP3P calculated value shown here for reference ("FreeSolv GAFF").

Each molecule runs ``openmm_hybrid.freeenergy.run_hydration`` in ``OUT/<name>`` (resumable:
rerun the same command after an interruption); the summary goes to ``OUT/summary.json`` and
``OUT/summary.md``.  Presets:

- ``quick`` (default; sized for a shared 2-core CPU, about 10 min per molecule): 2 fs with
  hydrogen mass repartitioning (3 amu), 5 + 9 alchemical states (13 windows), each 1 ps of
  equilibration then 30 samples 0.4 ps apart, cubic box with 0.9 nm padding (about 1.8 nm;
  0.8 nm cutoff, so that the box may shrink under NPT), NPT; end-state corrections by NEQ:
  0.5 ps of equilibration at each end state, then 16 switches of 0.1 ps (1 fs steps) per
  direction and phase from samples 50 fs apart.
- ``tiny``: a smoke test of the pipeline (minutes in total, numbers meaningless).

    python benchmarks/bench_hydration.py --out bench-hydration [--molecules methane,ethanol]
        [--preset quick|tiny] [--mm-only] [--torch-threads 1]
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

# name: (SMILES, FreeSolv id, experimental dG_hyd, its uncertainty, FreeSolv GAFF calculated), kcal/mol
FREESOLV = {
    "methane": ("C", "mobley_9055303", 2.00, 0.20, 2.60),
    "methanol": ("CO", "mobley_1636752", -5.10, 0.60, -3.48),
    "ethanol": ("CCO", "mobley_2310185", -5.00, 0.60, -3.45),
    "benzene": ("c1ccccc1", "mobley_3053621", -0.90, 0.20, -0.60),
    "toluene": ("Cc1ccccc1", "mobley_1873346", -0.90, 0.20, -0.70),
    "phenol": ("c1ccc(cc1)O", "mobley_20524", -6.60, 0.20, -4.60),
    "acetamide": ("CC(=O)N", "mobley_8048190", -9.71, 0.60, -8.62),
}

PRESETS = {
    "quick": [
        "build.padding_nm=0.9", "build.nonbonded_cutoff_nm=0.8", "build.box_shape=cube",
        "build.hydrogen_mass_amu=3.0",
        "simulation.timestep_fs=2.0", "simulation.friction_per_ps=1.0", "simulation.minimize_iterations=200",
        "alchemical.electrostatics_lambdas=[1.0, 0.75, 0.5, 0.25, 0.0]",
        "alchemical.sterics_lambdas=[1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]",
        "alchemical.solvent={equilibration_steps: 500, n_samples: 30, steps_between_samples: 200, "
        "samples_per_segment: 15}",
        "alchemical.vacuum={equilibration_steps: 500, n_samples: 30, steps_between_samples: 200, "
        "samples_per_segment: 30}",
        "correction.method=neq", "correction.simulation.timestep_fs=1.0",
        "correction.simulation.friction_per_ps=1.0", "correction.simulation.minimize_iterations=100",
        "correction.neq={n_switches: 16, switch_steps: 100, equilibration_steps: 500, "
        "steps_between_samples: 50, samples_per_segment: 8, switches_per_segment: 8}",
    ],
    "tiny": [
        "build.padding_nm=0.8", "build.nonbonded_cutoff_nm=0.7", "build.box_shape=cube",
        "build.hydrogen_mass_amu=3.0", "simulation.timestep_fs=2.0", "simulation.minimize_iterations=50",
        "alchemical.electrostatics_lambdas=[1.0, 0.5, 0.0]", "alchemical.sterics_lambdas=[1.0, 0.6, 0.3, 0.0]",
        "alchemical.solvent={equilibration_steps: 50, n_samples: 5, steps_between_samples: 20}",
        "alchemical.vacuum={equilibration_steps: 50, n_samples: 5, steps_between_samples: 20}",
        "correction.method=neq", "correction.min_overlap=0.0",
        "correction.neq={n_switches: 4, switch_steps: 10, equilibration_steps: 20, steps_between_samples: 10}",
    ],
}


def _fmt(value, error=None):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.2f}" if error is None else f"{value:+.2f} +- {error:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-hydration")
    parser.add_argument("--molecules", default=",".join(FREESOLV), help="comma-separated names")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--set", action="append", default=[], help="extra settings override KEY=VALUE")
    parser.add_argument("--mm-only", action="store_true", help="no ML/MM corrections")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--platform", default=None)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (1 is fastest for ANI-2x on a few atoms)")
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(args.torch_threads)
    from openmm_hybrid.freeenergy import run_hydration
    from openmm_hybrid.freeenergy.settings import HydrationSettings, load_settings, to_dict

    names = [n.strip() for n in args.molecules.split(",") if n.strip()]
    unknown = [n for n in names if n not in FREESOLV]
    if unknown:
        parser.error(f"unknown molecule(s) {unknown}; known: {', '.join(FREESOLV)}")
    overrides = PRESETS[args.preset] + [f"seed={args.seed}"] + list(args.set)
    if args.mm_only:
        overrides.append("ml=null")
    if args.platform:
        overrides += [f"simulation.platform={args.platform}", f"correction.simulation.platform={args.platform}"]
    settings = load_settings(HydrationSettings, None, overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        smiles, freesolv_id, exp, exp_error, gaff = FREESOLV[name]
        t0 = time.perf_counter()
        try:
            result = run_hydration(smiles, out / name, settings)
        except Exception as exc:  # report and go on with the next molecule
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            rows.append({"molecule": name, "error": str(exc)})
            continue
        row = {"molecule": name, "smiles": smiles, "freesolv_id": freesolv_id, "experiment": exp,
               "experiment_error": exp_error, "freesolv_gaff": gaff, "wall_seconds": time.perf_counter() - t0}
        for key in ("mm", "ml_mm"):
            if key in result["estimate"]:
                row[key] = result["estimate"][key]["kcal_per_mol"]
                row[f"{key}_error"] = result["estimate"][key]["kcal_per_mol_error"]
                row[f"{key}_minus_experiment"] = row[key] - exp
        rows.append(row)
        print(f"{name}: MM {_fmt(row.get('mm'), row.get('mm_error'))}, ML/MM {_fmt(row.get('ml_mm'), row.get('ml_mm_error'))}, "
              f"experiment {exp:+.2f} kcal/mol ({row['wall_seconds'] / 60:.1f} min)", flush=True)

    done = [r for r in rows if "mm" in r]
    summary = {"settings": to_dict(settings), "preset": args.preset, "rows": rows, "units": "kcal/mol",
               "reference": "FreeSolv v0.31 (Mobley & Guthrie 2014, doi:10.1007/s10822-014-9747-x)"}
    for key in ("mm", "ml_mm"):
        errors = [r[f"{key}_minus_experiment"] for r in done if key in r]
        if errors:
            summary[f"{key}_mae"] = sum(abs(e) for e in errors) / len(errors)
            summary[f"{key}_rmse"] = math.sqrt(sum(e * e for e in errors) / len(errors))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| molecule | experiment (FreeSolv) | FreeSolv GAFF | MM (this work) | MM - exp | ML/MM (ANI-2x) | ML/MM - exp |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "mm" not in r:
            lines.append(f"| {r['molecule']} | failed: {r.get('error', '')[:60]} | | | | | |")
            continue
        lines.append(f"| {r['molecule']} | {_fmt(r['experiment'], r['experiment_error'])} | {_fmt(r['freesolv_gaff'])} | "
                     f"{_fmt(r['mm'], r['mm_error'])} | {_fmt(r['mm_minus_experiment'])} | "
                     f"{_fmt(r.get('ml_mm'), r.get('ml_mm_error'))} | {_fmt(r.get('ml_mm_minus_experiment'))} |")
    for key, label in (("mm", "MM"), ("ml_mm", "ML/MM")):
        if f"{key}_mae" in summary:
            lines.append(f"\n{label}: MAE {summary[f'{key}_mae']:.2f}, RMSE {summary[f'{key}_rmse']:.2f} kcal/mol "
                         f"over {sum(1 for r in done if key in r)} molecules")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
