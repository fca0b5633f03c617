"""Small shared helpers: cache location and progress messages."""
import os
import sys
import time
from pathlib import Path


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
