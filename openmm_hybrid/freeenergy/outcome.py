"""The outcome of one free-energy estimate: its analysis, plots, status, and ``results.json``.

Every estimate (an end-state correction, a decoupling leg) ends the same way
(:func:`record_estimate`): the convergence plot, the estimate and its details, the *status*, and
``results.json``, written before an overlap problem is raised so that the numbers are kept.

Status, worst first:

- ``insufficient_overlap``: neighbouring windows (or forward and reverse works) barely overlap;
  the run stops with :class:`~openmm_hybrid.errors.InsufficientOverlapError`;
- ``insufficient_sampling``: too few effective samples, or halves of the data that disagree
  (:func:`~.estimators.sampling_problems`); the estimate is reported with the reasons, but its
  uncertainty is not to be trusted;
- ``ok``.

A combination of estimates (a hydration cycle, a binding correction) takes the worst status of
its parts (:func:`combined_status`).
"""
import json
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import numpy as np

from .._files import write_text_atomic
from .._util import progress
from ..errors import InsufficientOverlapError
from . import plots
from .estimators import jsonable, mbar_analysis, sampling_problems

RESULTS = "results.json"
STATUS_OK = "ok"
STATUS_INSUFFICIENT_SAMPLING = "insufficient_sampling"
STATUS_INSUFFICIENT_OVERLAP = "insufficient_overlap"
_SEVERITY = {STATUS_OK: 0, STATUS_INSUFFICIENT_SAMPLING: 1, STATUS_INSUFFICIENT_OVERLAP: 2}


def write_json(path, data) -> None:
    """``data`` as indented JSON, written atomically (non-finite numbers are written as NaN/Infinity)."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def combined_status(statuses: Iterable[str]) -> str:
    """The worst of several statuses."""
    return max(statuses, key=lambda status: _SEVERITY.get(status, 3), default=STATUS_OK)


def analyse_windows(windows: List[np.ndarray], temperature_K: float, decorrelate: bool, min_overlap: float,
                    names: Sequence[str], out: Path, label: str):
    """MBAR over equilibrium windows and the overlap-matrix plot (``out/overlap_matrix.png``).

    Returns
    -------
    (dict, InsufficientOverlapError or None)
        The analysis (:func:`~.estimators.mbar_analysis`), and the overlap error to raise once
        the results are written (:func:`record_estimate`).
    """
    error = None
    try:
        analysis = mbar_analysis(windows, temperature_K, decorrelate, min_overlap, names)
    except InsufficientOverlapError as exc:
        analysis, error = exc.analysis, exc
    plots.plot_overlap_matrix(analysis["overlap_matrix"], Path(out) / "overlap_matrix.png", names,
                              f"{label}: MBAR overlap")
    return analysis, error


def set_outcome(results: dict, analysis: dict, error: Optional[str], min_effective_samples: float) -> None:
    """Set ``estimate``, ``details``, ``sampling_problems``, ``status`` (see the module docstring)
    and, when the overlap was insufficient (``error``, its message), ``error`` in ``results``."""
    details = jsonable(analysis)
    results["estimate"] = details.pop("estimate")
    results["details"] = details
    problems = sampling_problems(analysis, min_effective_samples)
    results["sampling_problems"] = problems
    if error is not None:
        results["status"] = STATUS_INSUFFICIENT_OVERLAP
        results["error"] = error
    else:
        results["status"] = STATUS_INSUFFICIENT_SAMPLING if problems else STATUS_OK


def record_estimate(results: dict, analysis: dict, error: Optional[Exception], out: Path, label: str,
                    min_effective_samples: float, steps: int, t0: float) -> dict:
    """Finish ``results`` with ``analysis``, plot the convergence, write ``out/results.json``.

    Sets ``estimate``, ``details``, ``status`` (see the module docstring), ``sampling_problems``,
    ``error``, ``steps_this_process`` and ``wall_seconds_this_process``; then raises ``error``
    (an overlap problem) if there is one, else reports the estimate and any warnings.

    Returns
    -------
    dict
        ``results``.
    """
    out = Path(out)
    plots.plot_convergence(analysis["convergence"], out / "convergence.png", f"{label}: convergence")
    set_outcome(results, analysis, None if error is None else f"{label}: {error}", min_effective_samples)
    results["steps_this_process"] = int(steps)
    results["wall_seconds_this_process"] = time.perf_counter() - t0
    write_json(out / RESULTS, results)
    if error is not None:
        raise InsufficientOverlapError(f"{label}: {error}")
    for warning in analysis.get("warnings", []):
        progress(f"{label}: warning: {warning}")
    for problem in results["sampling_problems"]:
        progress(f"{label}: warning: insufficient sampling: {problem}")
    progress(f"{label}: {analysis['estimate']} (status {results['status']}); results in {out / RESULTS}")
    return results
