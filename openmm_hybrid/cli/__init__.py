"""Command-line interface: ``openmm-hybrid build | embed | energy | run | fe``.

Each step reads the previous step's folder and writes its own, so data flows one
way: build (MM system) -> embed (ML/MM system) -> run (trajectory) / energy / fe.
One module per subcommand, each with ``add_parser(subparsers)``.
"""
import argparse
import contextlib
import signal
import sys
import threading

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that clean-up code runs (temporary folders, child processes)."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    """While a command runs, SIGTERM interrupts it like SIGINT does (instead of killing the process
    on the spot), so partial output folders, AmberTools processes and temporary folders are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    args = make_parser().parse_args(argv)
    # --quiet holds for this command only: main() is also called in-process (tests, scripts)
    was_quiet = set_quiet(args.quiet)
    try:
        with _terminate_as_interrupt():
            args.func(args)
    except (HybridError, SimulationError) as exc:
        print(f"openmm-hybrid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # full disk, file-size limit, permissions: outputs are complete or absent
        print(f"openmm-hybrid {args.command}: error: cannot read or write a file: {exc}; nothing was written to "
              f"--out (outputs are replaced only when complete)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        what = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"openmm-hybrid {args.command}: stopped by {what}; nothing was written to --out (a partial "
              f"folder is removed); 'fe' runs resume from their last checkpoint when rerun", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        set_quiet(was_quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
