"""``openmm-hybrid fe endstate | hydration | binding-correction | campaign | report``.

Settings come from ``--settings FILE`` (YAML or JSON, any subset of the keys), then
``--set KEY=VALUE`` overrides, then the explicit options below.  Rerunning a command with
the same ``--out`` resumes an interrupted run (one of other settings or input is refused;
``--overwrite`` starts afresh).

Exit status: 0 done; 2 refused (the message says why); 3 stopped on request (rerun to resume);
4 (``campaign``) finished, but some ligands failed or were flagged (see ``fe report OUT``).
"""
import signal
import threading
from pathlib import Path

from ..errors import CampaignError
from ..freeenergy.binding import run_binding_correction
from ..freeenergy.campaign import load_campaign_settings, run_campaign, summarise
from ..freeenergy.campaign.cluster import JOBQUEUE_KINDS
from ..freeenergy.campaign.report import is_campaign
from ..freeenergy.checkpoint import SegmentBudget
from ..freeenergy.endstate import run_endstate_directory
from ..freeenergy.hydration import run_hydration
from ..freeenergy.report import report
from ..freeenergy.settings import BindingSettings, EndstateSettings, HydrationSettings, load_settings
from .options import add_output_arguments, add_platform_argument, interruptible

EXIT_LIGANDS_FAILED = 4


def _settings(cls, args, explicit: dict):
    overrides = list(args.set or [])
    overrides += [f"{key}={value}" for key, value in explicit.items() if value is not None]
    return load_settings(cls, args.settings, overrides)


def _budget(args):
    return SegmentBudget(args.stop_after_segments)


@interruptible
def cmd_endstate(args):
    settings = _settings(EndstateSettings, args, {"method": args.method, "seed": args.seed,
                                                  "simulation.platform": args.platform})
    result = run_endstate_directory(args.input, args.out, settings, _budget(args), overwrite=args.overwrite)
    _print_estimate("dF(MM -> ML/MM)", result["estimate"], result["status"])
    return result


@interruptible
def cmd_hydration(args):
    explicit = {"correction.method": args.method, "seed": args.seed, "simulation.platform": args.platform,
                "correction.simulation.platform": args.platform, "ml.model": args.model,
                "ml.embedding": args.embedding}
    if args.mm_only:
        explicit = {k: v for k, v in explicit.items() if not k.startswith("ml.")}
        explicit["ml"] = "null"
    settings = _settings(HydrationSettings, args, explicit)
    result = run_hydration(args.ligand, args.out, settings, _budget(args), overwrite=args.overwrite)
    _print_estimate("dG_hyd(MM)", result["estimate"]["mm"], result["status"])
    if "ml_mm" in result["estimate"]:
        _print_estimate("dG_hyd(ML/MM)", result["estimate"]["ml_mm"], result["status"])
    return result


@interruptible
def cmd_binding(args):
    settings = _settings(BindingSettings, args, {"method": args.method, "seed": args.seed,
                                                 "simulation.platform": args.platform})
    result = run_binding_correction(args.complex, args.solvent, args.out, settings, args.mm_dg, args.mm_dg_error,
                                    _budget(args), overwrite=args.overwrite)
    _print_estimate("ddG_corr", result["estimate"], result["status"])
    if "ml_mm_binding" in result:
        _print_estimate("dG_bind(ML/MM)", result["ml_mm_binding"], result["status"])
    return result


@interruptible
def cmd_campaign(args):
    if (args.hydration is None) == (args.ligands is None):
        raise CampaignError("give the series with --ligands FILE (binding corrections, with --protein) or "
                            "--hydration FILE (hydration free energies), not both")
    explicit = {"correction.method": args.method, "seed": args.seed, "correction.simulation.platform": args.platform,
                "simulation.platform": args.platform, "ml.model": args.model, "ml.embedding": args.embedding,
                "ml.mts_substeps": args.mts}
    settings = load_campaign_settings(args.settings, list(args.set or []) +
                                      [f"{k}={v}" for k, v in explicit.items() if v is not None])
    stop_on_sigterm = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if stop_on_sigterm else None
    try:
        summary = run_campaign(args.hydration or args.ligands, args.out, protein=args.protein, settings=settings,
                               mm_dg=args.mm_dg, experimental=args.experimental, hydration=args.hydration is not None,
                               scheduler=args.scheduler, cluster=args.cluster, cluster_config=args.cluster_config,
                               workers=args.workers, serial=args.serial, dashboard=not args.no_dashboard,
                               stop_after_units=args.stop_after_units, retry_failed=args.retry_failed)
    finally:
        if stop_on_sigterm:
            signal.signal(signal.SIGTERM, previous)
    print(summarise(args.out))
    counts = summary["counts"]
    if counts["failed"] or counts["other"]:
        raise SystemExit(EXIT_LIGANDS_FAILED)
    return summary


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # the campaign driver stops, saves what is done and says how to resume


def cmd_report(args):
    campaigns = [d for d in args.dirs if Path(d).is_dir() and is_campaign(d)]
    others = [d for d in args.dirs if d not in campaigns]
    texts = [summarise(d, args.format) for d in campaigns]
    if others:
        texts.append(report(others, args.format))
    text = "\n\n".join(texts)
    print(text)
    return text


def _print_estimate(label, estimate, status):
    note = "" if status == "ok" else f"  [status {status}: the uncertainty is not reliable, see results.json]"
    print(f"{label} = {estimate['kcal_per_mol']:.3f} +- {estimate['kcal_per_mol_error']:.3f} kcal/mol "
          f"({estimate['kT']:.3f} +- {estimate['kT_error']:.3f} kT){note}")


def _common(p, method=True):
    p.add_argument("--settings", help="settings file (YAML or JSON); the resolved settings are written to OUT")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting, e.g. --set neq.n_switches=20 (repeatable)")
    if method:
        p.add_argument("--method", choices=["neq", "mbar"], default=None,
                       help="end-state method: nonequilibrium switching + BAR, or MBAR windows")
    p.add_argument("--seed", type=int, default=None, help="master random seed (default: drawn and recorded)")
    add_platform_argument(p)
    p.add_argument("--stop-after-segments", type=int, default=None, metavar="N",
                   help="stop after N checkpointed segments (exit status 3); the same command resumes")
    add_output_arguments(p, "output folder (an unfinished run of the same command there resumes; --overwrite "
                            "starts afresh)")


def add_parser(subparsers) -> None:
    """Add ``fe`` and its subcommands to the main parser's subparsers."""
    fe = subparsers.add_parser("fe", help="free-energy workflows (end-state corrections, hydration, binding)")
    sub = fe.add_subparsers(dest="fe_command", required=True)

    p = sub.add_parser("endstate", help="F(ML/MM) - F(MM) of a system embedded with --interpolate")
    p.add_argument("--input", required=True, help="folder written by 'embed --interpolate'")
    _common(p)
    p.set_defaults(func=cmd_endstate)

    p = sub.add_parser("hydration", help="absolute hydration free energy, MM and ML/MM")
    p.add_argument("--ligand", required=True, help="SDF/MOL2 file or SMILES of a neutral molecule")
    p.add_argument("--model", default=None, help="ML model of the ML/MM end state (default ani2x)")
    p.add_argument("--embedding", default=None, help="embedding of the ML/MM end state (default mechanical)")
    p.add_argument("--mm-only", action="store_true", help="MM hydration free energy only (no ML/MM correction)")
    _common(p)
    p.set_defaults(func=cmd_hydration)

    p = sub.add_parser("binding-correction", help="ML/MM correction to a binding free energy (complex - solvent)")
    p.add_argument("--complex", required=True, help="'embed --interpolate' folder of the protein-ligand complex")
    p.add_argument("--solvent", required=True, help="'embed --interpolate' folder of the ligand in solvent")
    p.add_argument("--mm-dg", type=float, default=None, help="MM binding free energy (kcal/mol) to correct")
    p.add_argument("--mm-dg-error", type=float, default=0.0, help="its uncertainty (kcal/mol)")
    _common(p)
    p.set_defaults(func=cmd_binding)

    p = sub.add_parser("campaign", help="ML/MM binding corrections (or hydration free energies) of a ligand series, "
                                        "run on Dask")
    p.add_argument("--protein", help="prepared protein (PDB/mmCIF) of a binding campaign")
    p.add_argument("--ligands", help="the series: multi-molecule SDF (names from the titles) or SMILES file "
                                     "('SMILES name' per line)")
    p.add_argument("--hydration", metavar="MOLECULES",
                   help="hydration free energies of the molecules in this SDF/SMILES file (instead of --ligands)")
    p.add_argument("--mm-dg", metavar="CSV", help="MM binding free energies from any MM tool: name,dG,dG_err "
                                                  "(kcal/mol); the corrected dG is reported for them")
    p.add_argument("--experimental", metavar="CSV", help="experimental values name,dG,dG_err (kcal/mol): errors, "
                                                         "MAE, RMSE, Kendall tau")
    p.add_argument("--model", default=None, help="ML model (default ani2x; any registered name or a TorchScript file)")
    p.add_argument("--embedding", default=None, help="embedding (default mechanical)")
    p.add_argument("--mts", type=int, default=None, metavar="N",
                   help="multiple time steps: N inner MM steps per (outer) time step")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use a running Dask scheduler")
    p.add_argument("--cluster", choices=JOBQUEUE_KINDS, help="start Dask workers as batch jobs (dask-jobqueue)")
    p.add_argument("--cluster-config", metavar="FILE", help="YAML of dask-jobqueue arguments plus 'jobs: N' or "
                                                            "'adapt: {maximum_jobs: N}'")
    p.add_argument("--workers", type=int, default=None,
                   help="workers of the local cluster (default: one per GPU, else one per CPU core)")
    p.add_argument("--serial", action="store_true", help="run every unit in this process, without Dask")
    p.add_argument("--no-dashboard", action="store_true", help="no Dask dashboard for the local cluster")
    p.add_argument("--stop-after-units", type=int, default=None, metavar="N",
                   help="stop after N units of work (exit status 3); the same command resumes")
    p.add_argument("--retry-failed", action="store_true", help="try again the ligands that failed in earlier runs")
    p.add_argument("--settings", help="campaign settings file (YAML or JSON); the resolved settings go to OUT")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting, e.g. --set correction.neq.n_switches=50 (repeatable)")
    p.add_argument("--method", choices=["neq", "mbar"], default=None, help="end-state method of the corrections")
    p.add_argument("--seed", type=int, default=None, help="campaign seed (default: drawn and recorded)")
    p.add_argument("--platform", default=None, help="OpenMM platform (default: the fastest on each worker)")
    p.add_argument("--out", required=True, help="campaign folder (an unfinished campaign there resumes)")
    p.set_defaults(func=cmd_campaign)

    p = sub.add_parser("report", help="table of one or many result folders, or the summary of a campaign folder")
    p.add_argument("dirs", nargs="+", help="result folders (or results.json files, or folders of result folders), "
                                           "or campaign folders")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.set_defaults(func=cmd_report)
