"""Predicted against experimental free energies: MAE, RMSE and Kendall's tau with bootstrap intervals.

Each bootstrap replicate draws the ligands with replacement and adds to every drawn value
Gaussian noise of its own stated uncertainty (predicted and experimental), so the intervals
carry both the finite size of the series and the statistical error of each number (the usual
practice for free-energy benchmarks).  The replicates are drawn from a generator seeded by the
campaign, so a report is reproducible.
"""
import math
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import stats

Pair = Tuple[float, float]  # value, uncertainty (kcal/mol)


def _metrics(predicted: np.ndarray, experimental: np.ndarray) -> Tuple[float, float, float]:
    difference = predicted - experimental
    mae = float(np.mean(np.abs(difference)))
    rmse = float(np.sqrt(np.mean(difference ** 2)))
    if len(predicted) < 2:
        return mae, rmse, float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant replicate has no ranking: tau is nan
        tau = float(stats.kendalltau(experimental, predicted).statistic)
    return mae, rmse, tau


def compare(predicted: Dict[str, Pair], experimental: Dict[str, Pair], bootstrap_samples: int = 1000,
            confidence: float = 0.95, seed: int = 0) -> Optional[dict]:
    """Error statistics over the ligands present in both tables.

    Parameters
    ----------
    predicted, experimental : dict
        Ligand name -> (value, uncertainty) in kcal/mol.
    bootstrap_samples : int
        Replicates for the intervals (0: no intervals).
    confidence : float
        Interval level (0.95: the 2.5th and 97.5th percentiles of the replicates).
    seed : int

    Returns
    -------
    dict or None
        ``n``, ``ligands`` and, each as ``{"value", "low", "high"}`` (kcal/mol; tau unitless),
        ``mae``, ``rmse``, ``kendall_tau``; None when no ligand is in both.
    """
    names = [name for name in predicted if name in experimental]
    if not names:
        return None
    y = np.array([predicted[n][0] for n in names], dtype=float)
    dy = np.array([predicted[n][1] for n in names], dtype=float)
    x = np.array([experimental[n][0] for n in names], dtype=float)
    dx = np.array([experimental[n][1] for n in names], dtype=float)
    values = _metrics(y, x)
    result = {"n": len(names), "ligands": names, "bootstrap_samples": int(bootstrap_samples),
              "confidence": confidence}
    replicates = np.full((int(bootstrap_samples), 3), np.nan)
    rng = np.random.default_rng(seed)
    for b in range(int(bootstrap_samples)):
        index = rng.integers(0, len(names), len(names))
        replicates[b] = _metrics(y[index] + rng.normal(0.0, 1.0, len(index)) * dy[index],
                                 x[index] + rng.normal(0.0, 1.0, len(index)) * dx[index])
    tail = 100 * (1 - confidence) / 2
    for column, key in enumerate(("mae", "rmse", "kendall_tau")):
        entry = {"value": values[column], "low": None, "high": None}
        finite = replicates[:, column][np.isfinite(replicates[:, column])]
        if len(finite):
            entry["low"], entry["high"] = (float(v) for v in np.percentile(finite, [tail, 100 - tail]))
        result[key] = entry
    return result


def format_statistic(entry: Optional[dict], digits: int = 2) -> str:
    """``0.84 [0.51, 1.20]`` (or ``n/a``)."""
    if not entry or entry.get("value") is None or not math.isfinite(entry["value"]):
        return "n/a"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("low") is not None:
        text += f" [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
    return text
