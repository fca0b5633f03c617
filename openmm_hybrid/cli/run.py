"""``openmm-hybrid run``: minimisation and MD of a System folder (the bundled example without one)."""
import argparse
from pathlib import Path

from openmm import unit

from .._files import output_folder
from .._util import progress
from ..dynamics.simulation import run_simulation
from ..dynamics.warmup import DEFAULT_WARMUP_STEPS
from ..errors import HybridError, RunInterrupted, SimulationError
from ..hybrid.mts import mts_force_groups
from ..mm.builder import build_system
from ..mm.system_files import load_build
from .embed import embed_directory
from .options import add_output_arguments, add_platform_argument, interruptible

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "t4-lysozyme"


@interruptible
def cmd_run(args):
    out = Path(args.out)
    with output_folder(out, args.overwrite, [args.input], what="run", keep_on=(RunInterrupted, SimulationError),
                       resume=args.resume) as work:
        input_dir = args.input if args.input is not None else _bundled_example(args, out, work)
        built = load_build(input_dir)
        if "ml_atoms" not in built.info:
            progress(f"note: '{input_dir}' holds a pure MM system (no embed.json); running it as is")
        force_groups = None
        if args.mts is not None:
            force_groups = mts_force_groups(built.info)
        box = built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions() else None
        try:
            result = run_simulation(built.system, built.topology, built.positions, work, steps=args.steps,
                                    timestep=args.timestep * unit.femtosecond,
                                    temperature=args.temperature * unit.kelvin, platform=args.platform,
                                    minimize=not args.no_minimize, minimize_iterations=args.minimize_iterations,
                                    report_interval=args.report_interval, box_vectors=box, seed=args.seed,
                                    mts_substeps=args.mts, force_groups=force_groups,
                                    checkpoint_interval=args.checkpoint_interval, resume=args.resume,
                                    warmup_steps=args.warmup_steps)
        except SimulationError as exc:
            raise SimulationError(f"{exc}\nThe log and trajectory up to the stop are in '{work}' (a later run "
                                  f"into --out {out} needs --overwrite to discard them)") from exc
    speed = f"{result['ns_per_day']:.4f} ns/day ({result['ms_per_step']:.2f} ms/step on {result['platform']})" \
        if result.get("ns_per_day") else f"on {result['platform']}"
    print(f"{speed}; output in {out}")
    return result


def _bundled_example(args, out: Path, work: Path) -> Path:
    """Build and embed the bundled example into ``work`` (reused when resuming); returns the embed folder."""
    if args.resume and (work / "embed" / "embed.json").is_file():
        return work / "embed"
    if not EXAMPLE_DIR.is_dir():
        raise HybridError(f"the bundled example is not at {EXAMPLE_DIR}; install from a source checkout "
                          f"(pip install -e .) or pass --input")
    progress(f"no --input: running the bundled example (T4 lysozyme L99A + p-xylene) in {out}")
    build_system(protein=str(EXAMPLE_DIR / "receptor.pdb"), ligand=str(EXAMPLE_DIR / "p-xylene.sdf"),
                 solvent="explicit", padding=args.example_padding * unit.nanometer,
                 box_shape="dodecahedron").save(work / "build")
    embed_directory(work / "build", work / "embed", region="resname LIG", model="ani2x",
                    mts_ready=args.mts is not None, overwrite=True)
    return work / "embed"


def add_parser(subparsers) -> None:
    """Add ``run`` to the main parser's subcommands."""
    p = subparsers.add_parser("run", help="minimise + Langevin MD (bundled example when --input is omitted)")
    p.add_argument("--input", default=None, help="directory written by 'embed' (or 'build')")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--timestep", type=float, default=1.0,
                   help="fs (default 1); with --mts N this is the OUTER step (the ML force is evaluated once per "
                        "--timestep, the MM forces every --timestep/N)")
    p.add_argument("--mts", type=int, default=None, metavar="N",
                   help="multiple-time-step BAOAB-RESPA Langevin with N inner substeps per outer --timestep "
                        "(needs a system embedded with --mts-ready); --steps counts outer steps")
    p.add_argument("--temperature", type=float, default=300.0, help="K")
    p.add_argument("--report-interval", type=int, default=None)
    p.add_argument("--no-minimize", action="store_true")
    p.add_argument("--warmup-steps", type=int, default=DEFAULT_WARMUP_STEPS,
                   help=f"after minimisation, heat from 10%% of --temperature to it with velocity rescaling every 10 "
                        f"steps over half of these steps, then hold (default {DEFAULT_WARMUP_STEPS}; outer steps with "
                        f"--mts; 0: velocities drawn at --temperature only); recorded in run.json")
    p.add_argument("--minimize-iterations", type=int, default=200,
                   help="L-BFGS iterations at most (default 200; 0: to convergence, slow for solvated systems)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-interval", type=int, default=None, metavar="N",
                   help="save a checkpoint every N steps (default: every --report-interval); Ctrl-C or SIGTERM "
                        "saves one and stops")
    p.add_argument("--resume", action="store_true",
                   help="continue a run into the same --out that was stopped (Ctrl-C, SIGTERM, a crash) from its "
                        "last checkpoint; the other options must be those of the stopped run")
    p.add_argument("--example-padding", type=float, default=1.0, help=argparse.SUPPRESS)
    add_platform_argument(p)
    add_output_arguments(p, "output folder (refused if not empty, unless --overwrite)")
    p.set_defaults(func=cmd_run)
