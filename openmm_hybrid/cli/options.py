"""Command-line options and behaviour shared by several subcommands."""
import functools
import sys

from ..errors import RunInterrupted

#: Exit status of a command that stopped on request after saving its progress (it can resume).
EXIT_INTERRUPTED = 3


def add_platform_argument(parser) -> None:
    """``--platform NAME``."""
    parser.add_argument("--platform", default=None,
                        help="OpenMM platform (CPU, CUDA, Reference, ...; default: the fastest available)")


def add_output_arguments(parser, help_text: str = "output folder") -> None:
    """``--out FOLDER`` and ``--overwrite``."""
    parser.add_argument("--out", required=True, help=help_text)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --out folder (it is replaced only once the new one is complete)")


def interruptible(function):
    """Turn a requested stop (RunInterrupted) into exit status 3 with the message saying how to resume."""
    @functools.wraps(function)
    def wrapper(args):
        try:
            return function(args)
        except RunInterrupted as exc:
            # printed also with --quiet: it says how to resume
            print(f"openmm-hybrid {args.command}: interrupted: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_INTERRUPTED)
    return wrapper
