"""``openmm-hybrid run``: minimisation and MD of a System folder (the bundled example without one)."""
import argparse
from pathlib import Path

from openmm import unit

from .._util import progress
from ..dynamics.simulation import run_simulation
from ..dynamics.warmup import DEFAULT_WARMUP_STEPS
from ..errors import HybridError
from ..hybrid.mts import mts_force_groups
from ..mm.builder import build_system
from ..mm.system_files import load_build
from .embed import embed_directory
from .options import add_platform_argument

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "t4-lysozyme"


def cmd_run(args):
    out = Path(args.out)
    input_dir = args.input
    if input_dir is None:
        if not EXAMPLE_DIR.is_dir():
            raise HybridError(f"the bundled example is not at {EXAMPLE_DIR}; install from a source checkout "
                              f"(pip install -e .) or pass --input")
        progress(f"no --input: running the bundled example (T4 lysozyme L99A + p-xylene) in {out}")
        build_system(protein=str(EXAMPLE_DIR / "receptor.pdb"), ligand=str(EXAMPLE_DIR / "p-xylene.sdf"),
                     solvent="explicit", padding=args.example_padding * unit.nanometer,
                     box_shape="dodecahedron").save(out / "build")
        embed_directory(out / "build", out / "embed", region="resname LIG", model="ani2x",
                        mts_ready=args.mts is not None)
        input_dir = out / "embed"
    built = load_build(input_dir)
    if "ml_atoms" not in built.info:
        progress(f"note: '{input_dir}' holds a pure MM system (no embed.json); running it as is")
    force_groups = None
    if args.mts is not None:
        force_groups = mts_force_groups(built.info)
    box = built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions() else None
    result = run_simulation(built.system, built.topology, built.positions, out, steps=args.steps,
                            timestep=args.timestep * unit.femtosecond, temperature=args.temperature * unit.kelvin,
                            platform=args.platform, minimize=not args.no_minimize,
                            minimize_iterations=args.minimize_iterations,
                            report_interval=args.report_interval, box_vectors=box, seed=args.seed,
                            mts_substeps=args.mts, force_groups=force_groups, warmup_steps=args.warmup_steps)
    print(f"{result['ns_per_day']:.4f} ns/day ({result['ms_per_step']:.2f} ms/step on {result['platform']}); "
          f"output in {out}")
    return result


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
    p.add_argument("--example-padding", type=float, default=1.0, help=argparse.SUPPRESS)
    add_platform_argument(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_run)
