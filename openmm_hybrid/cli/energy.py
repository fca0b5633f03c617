"""``openmm-hybrid energy``: the potential energy of a System folder and its parts, as JSON (always valid:
a non-finite energy is an error naming the force)."""
import json

from ..analysis.energy import energy_decomposition
from ..mm.system_files import load_build
from .options import add_platform_argument


def cmd_energy(args):
    built = load_build(args.input)
    result = energy_decomposition(built.system, built.positions, built.state.getPeriodicBoxVectors()
                                  if built.system.usesPeriodicBoundaryConditions() else None,
                                  platform=args.platform or "CPU")
    result = {"units": "kJ/mol", **result}
    # energy_decomposition refuses non-finite energies, so this is always valid JSON
    print(json.dumps(result, indent=2, allow_nan=False))
    return result


def add_parser(subparsers) -> None:
    """Add ``energy`` to the main parser's subcommands."""
    p = subparsers.add_parser("energy", help="print the potential energy and its parts as JSON (kJ/mol)")
    p.add_argument("--input", required=True)
    add_platform_argument(p)
    p.set_defaults(func=cmd_energy)
