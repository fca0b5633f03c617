"""Command-line interface: ``openmm-hybrid build | embed | energy | run | fe``.

Each step reads the previous step's folder and writes its own, so data flows one
way: build (MM system) -> embed (ML/MM system) -> run (trajectory) / energy / fe.
One module per subcommand, each with ``add_parser(subparsers)``.
"""
import argparse
import sys

from .._util import set_quiet
from ..errors import HybridError, SimulationError
from . import build, embed, energy, fe, run

SUBCOMMANDS = (build, embed, energy, run, fe)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openmm-hybrid", description="ML/MM embedding for OpenMM")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    # --quiet holds for this command only: main() is also called in-process (tests, scripts)
    was_quiet = set_quiet(args.quiet)
    try:
        args.func(args)
    except (HybridError, SimulationError) as exc:
        print(f"openmm-hybrid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        set_quiet(was_quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
