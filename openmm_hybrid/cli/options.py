"""Command-line options shared by several subcommands."""


def add_platform_argument(parser) -> None:
    """``--platform NAME``."""
    parser.add_argument("--platform", default=None, help="OpenMM platform (CPU, CUDA, Reference, ...)")
