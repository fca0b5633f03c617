"""``openmm-hybrid fe endstate | hydration | binding-correction | report``.

Settings come from ``--settings FILE`` (YAML or JSON, any subset of the keys), then
``--set KEY=VALUE`` overrides, then the explicit options below.  Rerunning a command with
the same ``--out`` resumes an interrupted run (one of other settings or input is refused;
``--overwrite`` starts afresh).
"""
from ..freeenergy.binding import run_binding_correction
from ..freeenergy.checkpoint import SegmentBudget
from ..freeenergy.endstate import run_endstate_directory
from ..freeenergy.hydration import run_hydration
from ..freeenergy.report import report
from ..freeenergy.settings import BindingSettings, EndstateSettings, HydrationSettings, load_settings
from .options import add_output_arguments, add_platform_argument, interruptible


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


def cmd_report(args):
    text = report(args.dirs, args.format)
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

    p = sub.add_parser("report", help="table of one or many result folders")
    p.add_argument("dirs", nargs="+", help="result folders (or results.json files, or folders of result folders)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.set_defaults(func=cmd_report)
