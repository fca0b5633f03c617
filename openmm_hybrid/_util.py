"""Small shared helpers: cache location, progress messages, units at the API boundary, entry points."""
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Iterator, Tuple

from openmm import unit


def cache_dir(*parts: str) -> Path:
    """Return (and create) a directory in the openmm-hybrid cache.

    The root is ``$OPENMM_HYBRID_CACHE`` if set, else ``$XDG_CACHE_HOME/openmm-hybrid``
    (default ``~/.cache/openmm-hybrid``).
    """
    root = os.environ.get("OPENMM_HYBRID_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "openmm-hybrid")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


_QUIET = False


def set_quiet(quiet: bool) -> bool:
    """Silence (or re-enable) progress messages; returns the previous setting."""
    global _QUIET
    previous, _QUIET = _QUIET, bool(quiet)
    return previous


def progress(message: str) -> None:
    """Print a progress message on stderr (stdout is kept for machine-readable output)."""
    if not _QUIET:
        print(f"[openmm-hybrid {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def as_quantity(value, default_unit):
    """``value`` as an ``openmm.unit`` Quantity: plain numbers are taken in ``default_unit``."""
    return value if unit.is_quantity(value) else value * default_unit


def entry_point_targets(group: str, known) -> Iterator[Tuple[str, object]]:
    """``(name, loaded object)`` of the entry points in ``group`` whose name is not in ``known``."""
    for ep in entry_points(group=group):
        if ep.name not in known:
            yield ep.name, ep.load()
