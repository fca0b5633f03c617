"""Small shared helpers: cache location, progress messages, units and argument ranges at the API boundary,
entry points, stop requests (SIGINT/SIGTERM) and OpenMM errors as messages."""
import contextlib
import math
import os
import signal
import sys
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Iterator, Optional, Tuple

import openmm
from openmm import unit

from .errors import HybridError, SimulationError


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


def format_duration(seconds: float) -> str:
    """A duration for messages: seconds below 2 minutes, minutes below 2 hours, else hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def as_quantity(value, default_unit):
    """``value`` as an ``openmm.unit`` Quantity: plain numbers are taken in ``default_unit``."""
    return value if unit.is_quantity(value) else value * default_unit


def check_range(name: str, value, minimum: Optional[float] = None, maximum: Optional[float] = None,
                include_minimum: bool = True, include_maximum: bool = True, units: str = "", hint: str = "",
                integer: bool = False) -> float:
    """Refuse an argument outside ``[minimum, maximum]`` (or the open ends) with a message naming it.

    For CLI options and API arguments alike: the message reads "``name`` must be ... ``units``,
    not ``value``" followed by ``hint`` (what to do).  ``value`` is a plain number in ``units``
    (convert Quantities first, e.g. with :func:`as_quantity`); NaN and infinities are refused.

    Parameters
    ----------
    name : str
        How the caller names the argument, e.g. ``"--padding"`` or ``"padding"``.
    value : float or int
    minimum, maximum : float, optional
        Bounds; ``None``: unbounded on that side.
    include_minimum, include_maximum : bool
        Whether the bound itself is allowed.
    units : str
        Unit written after the numbers ("nm", "K", ...).
    hint : str
        Appended to the message.
    integer : bool
        Also refuse non-integral values.

    Returns
    -------
    float or int
        ``value``, unchanged.

    Raises
    ------
    HybridError
    """
    suffix = f" {units}" if units else ""
    tail = f"; {hint}" if hint else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HybridError(f"{name} must be a number{suffix}, not {value!r}{tail}") from None
    if not math.isfinite(number):
        raise HybridError(f"{name} must be a finite number{suffix}, not {value!r}{tail}")
    if integer and not number.is_integer():
        raise HybridError(f"{name} must be a whole number, not {value!r}{tail}")
    low_ok = minimum is None or number > minimum or (include_minimum and number == minimum)
    high_ok = maximum is None or number < maximum or (include_maximum and number == maximum)
    if low_ok and high_ok:
        return value
    parts = []
    if minimum is not None:
        parts.append(f"{'at least' if include_minimum else 'greater than'} {minimum:g}{suffix}")
    if maximum is not None:
        parts.append(f"{'at most' if include_maximum else 'less than'} {maximum:g}{suffix}")
    raise HybridError(f"{name} must be {' and '.join(parts)}, not {value:g}{suffix}{tail}")


def entry_point_targets(group: str, known) -> Iterator[Tuple[str, object]]:
    """``(name, loaded object)`` of the entry points in ``group`` whose name is not in ``known``."""
    for ep in entry_points(group=group):
        if ep.name not in known:
            yield ep.name, ep.load()


class StopRequests:
    """SIGINT (Ctrl-C) and SIGTERM ask a long loop to stop at its next safe point instead of
    killing it there.

    Use as ``with StopRequests() as stop:``, then check ``stop.requested`` (the name of the first
    signal received, or None) between units of work, save, and stop.  The previous handlers
    come back on exit.  Signals can be caught only in the main thread; elsewhere this is a
    no-op (``requested`` stays None).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: Optional[str] = None
        self._previous = {}

    def _handler(self, number, frame):
        if self.requested is None:
            self.requested = signal.Signals(number).name
            progress(f"{self.requested} received: stopping at the next checkpoint")

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


@contextlib.contextmanager
def openmm_errors(where: str) -> Iterator[None]:
    """Turn an ``openmm.OpenMMException`` raised in the block into a :class:`SimulationError`
    that says ``where`` it happened (e.g. "at MD step 1200") and what OpenMM reported; an error
    raised by a TorchScript module (an ML model) is named as such."""
    try:
        yield
    except openmm.OpenMMException as exc:
        text = str(exc).strip()
        source = "an ML model (TorchScript module) raised an error" if "TorchScript" in text or "torch" in text \
            else "OpenMM reported an error"
        raise SimulationError(f"{source} {where}: {text[-1500:]}") from exc
