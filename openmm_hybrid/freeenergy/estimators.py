"""Free-energy estimators on reduced works and reduced potentials (pymbar 4).

Everything here works in units of kT (reduced quantities).  :class:`FreeEnergy` carries an
estimate with its uncertainty and converts to kcal/mol and kJ/mol at its temperature.

- Nonequilibrium switching: BAR on forward and reverse works (the Crooks fluctuation
  theorem makes BAR the maximum-likelihood estimate from two-way work), with the one-sided
  Jarzynski (exponential averaging) estimates from each direction beside it.
- Equilibrium windows: MBAR, its overlap matrix, and samples decorrelated by the
  statistical inefficiency of each window's energy differences.
- Forward/backward convergence: the estimate from the first and the last fraction of the data.
- Effective sample counts and :func:`sampling_problems`: whether an estimate rests on enough
  independent samples, and whether its two halves agree, for the ``insufficient_sampling``
  status.
"""
import logging
import math
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..errors import FreeEnergyError, InsufficientOverlapError
from .sampler import KJ_PER_KCAL, thermal_energy

logging.getLogger("pymbar").setLevel(logging.ERROR)  # import-time notes (JAX absent, timeseries caveat)

CONVERGENCE_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))
#: The first and second halves of the data may differ by at most this many combined sigmas
#: (a correct run exceeds 4 sigma with probability 6e-5).
HALVES_MAX_SIGMA = 4.0


def _pymbar():
    import pymbar
    return pymbar


@dataclass
class FreeEnergy:
    """A free-energy estimate with its one-sigma uncertainty, in kT at ``temperature_K``."""

    value_kT: float
    error_kT: float
    temperature_K: float

    @property
    def kT_kcal(self) -> float:
        return thermal_energy(self.temperature_K) / KJ_PER_KCAL

    @property
    def kcal_per_mol(self) -> float:
        return self.value_kT * self.kT_kcal

    @property
    def kcal_per_mol_error(self) -> float:
        return self.error_kT * self.kT_kcal

    def to_dict(self) -> dict:
        kT_kj = thermal_energy(self.temperature_K)
        return {"kT": self.value_kT, "kT_error": self.error_kT,
                "kcal_per_mol": self.kcal_per_mol, "kcal_per_mol_error": self.kcal_per_mol_error,
                "kJ_per_mol": self.value_kT * kT_kj, "kJ_per_mol_error": self.error_kT * kT_kj,
                "temperature_K": self.temperature_K}

    @classmethod
    def from_dict(cls, data: dict) -> "FreeEnergy":
        return cls(data["kT"], data["kT_error"], data["temperature_K"])

    def _combine(self, other: "FreeEnergy", sign: float) -> "FreeEnergy":
        if abs(other.temperature_K - self.temperature_K) > 1e-9:
            raise FreeEnergyError(f"cannot combine free energies at {self.temperature_K} K and {other.temperature_K} K")
        # independent estimates: uncertainties add in quadrature
        return FreeEnergy(self.value_kT + sign * other.value_kT, math.hypot(self.error_kT, other.error_kT),
                          self.temperature_K)

    def __add__(self, other):
        return self._combine(other, 1.0)

    def __sub__(self, other):
        return self._combine(other, -1.0)

    def __neg__(self):
        return FreeEnergy(-self.value_kT, self.error_kT, self.temperature_K)

    def __str__(self):
        return f"{self.kcal_per_mol:.3f} +- {self.kcal_per_mol_error:.3f} kcal/mol ({self.value_kT:.3f} +- {self.error_kT:.3f} kT)"


# ---- nonequilibrium work -----------------------------------------------------------------

def bar(w_forward: Sequence[float], w_reverse: Sequence[float]):
    """Bennett acceptance ratio from forward works (0 -> 1) and reverse works (1 -> 0), in kT.

    Returns
    -------
    (float, float)
        Free-energy difference F(1) - F(0) and its uncertainty, in kT.
    """
    w_f = np.asarray(w_forward, dtype=float)
    w_r = np.asarray(w_reverse, dtype=float)
    if len(w_f) < 2 or len(w_r) < 2:
        raise FreeEnergyError("BAR needs at least two works in each direction")
    # shift so that the works are O(1): an ML/MM end state can differ from MM by 1e5 kT
    shift = 0.5 * (np.mean(w_f) - np.mean(w_r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _pymbar().other_estimators.bar(w_f - shift, w_r + shift, compute_uncertainty=True)
    return float(result["Delta_f"]) + shift, float(result["dDelta_f"])


def jarzynski(works: Sequence[float]):
    """Jarzynski (exponential) average ``-ln <exp(-w)>`` and its uncertainty, in kT."""
    w = np.asarray(works, dtype=float)
    if len(w) < 2:
        raise FreeEnergyError("Jarzynski's estimator needs at least two works")
    shift = float(np.min(w))
    result = _pymbar().other_estimators.exp(w - shift, compute_uncertainty=True)
    return float(result["Delta_f"]) + shift, float(result["dDelta_f"])


def work_overlap(w_forward: Sequence[float], w_reverse: Sequence[float]) -> float:
    """Overlap of forward and reverse work distributions (0: none, 0.5: identical ideal limit).

    Computed as the off-diagonal element of MBAR's overlap matrix for the two end states,
    with the works as reduced energy differences (which is what BAR uses).
    """
    w_f = np.asarray(w_forward, dtype=float)
    w_r = np.asarray(w_reverse, dtype=float)
    shift = 0.5 * (np.mean(w_f) - np.mean(w_r))
    u_kn = np.zeros((2, len(w_f) + len(w_r)))
    u_kn[1, :len(w_f)] = w_f - shift
    u_kn[0, len(w_f):] = w_r + shift
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        matrix = _overlap_matrix(u_kn, np.array([len(w_f), len(w_r)]))
    return float(min(matrix[0, 1], matrix[1, 0]))


def statistical_inefficiency(series: Sequence[float]) -> float:
    """pymbar's statistical inefficiency g (1: uncorrelated); 1 for a constant series."""
    values = np.asarray(series, dtype=float)
    if len(values) < 3 or np.ptp(values) == 0.0:
        return 1.0
    try:
        return float(_pymbar().timeseries.statistical_inefficiency(values))
    except Exception:  # pymbar raises ParameterError for degenerate series
        return 1.0


def neq_analysis(w_forward, w_reverse, temperature_K: float, min_overlap: float = 0.0) -> dict:
    """BAR, Jarzynski forward and reverse, overlap and convergence of two-way switching.

    Returns a dict: ``estimate`` (BAR, a :class:`FreeEnergy`), ``jarzynski_forward``,
    ``jarzynski_reverse`` (both F(1) - F(0)), ``overlap``, ``n_forward``, ``n_reverse``,
    ``statistical_inefficiency`` g (of each work series, in sampling order),
    ``effective_samples`` (independent works per direction, n / g), ``jarzynski_effective_samples``
    (Kish's effective number of each direction's exponential work weights: how many works the
    one-sided estimates rest on), ``convergence``.  Uncertainties are multiplied by sqrt(g) when
    g > 1 (works from correlated starting configurations carry less information than independent
    ones).

    Raises
    ------
    InsufficientOverlapError
        When the work distributions overlap less than ``min_overlap``; the exception's
        ``analysis`` attribute holds the results computed anyway.
    """
    w_f = np.asarray(w_forward, dtype=float)
    w_r = np.asarray(w_reverse, dtype=float)
    df, ddf = bar(w_f, w_r)
    jf, djf = jarzynski(w_f)
    jr, djr = jarzynski(w_r)
    overlap = work_overlap(w_f, w_r)
    enough_overlap = overlap >= min_overlap
    # switches start from successive equilibrium samples; if those are correlated, so are the
    # works, and BAR's error (which assumes independent works) is scaled by sqrt(g)
    g = {"forward": statistical_inefficiency(w_f), "reverse": statistical_inefficiency(w_r)}
    inflation = math.sqrt(max(1.0, g["forward"], g["reverse"]))
    result = {
        "estimate": FreeEnergy(df, ddf * inflation, temperature_K),
        "estimator": "BAR (Crooks) on forward and reverse nonequilibrium work",
        "bar_error_independent_works_kT": ddf,
        "error_inflation_sqrt_g": inflation,
        "jarzynski_forward": FreeEnergy(jf, djf * math.sqrt(max(1.0, g["forward"])), temperature_K),
        "jarzynski_reverse": FreeEnergy(-jr, djr * math.sqrt(max(1.0, g["reverse"])), temperature_K),
        "overlap": overlap,
        "n_forward": int(len(w_f)), "n_reverse": int(len(w_r)),
        "mean_work_forward_kT": float(np.mean(w_f)), "mean_work_reverse_kT": float(np.mean(w_r)),
        "std_work_forward_kT": float(np.std(w_f, ddof=1)), "std_work_reverse_kT": float(np.std(w_r, ddof=1)),
        # mean dissipated work <W_F> - dF and <W_R> + dF (both >= 0 by the second law)
        "dissipation_forward_kT": float(np.mean(w_f) - df), "dissipation_reverse_kT": float(np.mean(w_r) + df),
        "statistical_inefficiency": g,
        "effective_samples": {"forward": len(w_f) / max(1.0, g["forward"]),
                              "reverse": len(w_r) / max(1.0, g["reverse"])},
        "jarzynski_effective_samples": {"forward": kish_effective_samples(-w_f),
                                        "reverse": kish_effective_samples(-w_r)},
        "warnings": _second_law_warnings(w_f, w_r, g),
        "convergence": neq_convergence(w_f, w_r, temperature_K) if enough_overlap else _empty_convergence(temperature_K),
    }
    if not enough_overlap:
        error = InsufficientOverlapError(
            f"the forward and reverse work distributions overlap by only {overlap:.3g} (minimum {min_overlap}): "
            f"BAR is unreliable (forward <W> = {np.mean(w_f):.4g} kT, reverse <W> = {np.mean(w_r):.4g} kT, "
            f"dissipation {result['dissipation_forward_kT']:.3g} / {result['dissipation_reverse_kT']:.3g} kT). "
            f"Use longer switches (neq.switch_steps) or more switches (neq.n_switches), or MBAR with more windows")
        error.analysis = result
        raise error
    return result


def kish_effective_samples(log_weights: Sequence[float]) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of weights given by their logarithms."""
    x = np.asarray(log_weights, dtype=float)
    if not len(x):
        return 0.0
    w = np.exp(x - np.max(x))
    return float(w.sum() ** 2 / np.sum(w * w))


def sampling_problems(analysis: dict, min_effective_samples: float) -> List[str]:
    """Why an estimate from :func:`neq_analysis` or :func:`mbar_analysis` rests on too little
    sampling for its uncertainty to be trusted; empty when it does not.

    Two checks:

    - every direction (NEQ) or state (MBAR) has at least ``min_effective_samples`` effective
      samples (``effective_samples``); below about 20 independent samples neither the
      asymptotic uncertainty nor the statistical inefficiency it is corrected by can be
      estimated from the data;
    - the estimates from the first and the second half of the data (``convergence`` at 0.5)
      agree within :data:`HALVES_MAX_SIGMA` combined standard errors (each multiplied by
      ``error_inflation_sqrt_g`` where the samples are correlated): a larger difference means
      that the samples drift (not equilibrated) or are correlated over longer than the run,
      which the error bar does not include.
    """
    problems = []
    counts = analysis.get("effective_samples") or {}
    if counts:
        name, smallest = min(counts.items(), key=lambda item: item[1])
        if smallest < min_effective_samples:
            problems.append(f"only {smallest:.1f} effective (independent) samples at {name} (minimum "
                            f"{min_effective_samples:g}): sample more (more switches or samples, or more steps "
                            f"between samples)")
    convergence = analysis.get("convergence") or {}
    if 0.5 in convergence.get("fraction", []):
        k = convergence["fraction"].index(0.5)
        first, last = convergence["forward_kT"][k], convergence["backward_kT"][k]
        inflation = analysis.get("error_inflation_sqrt_g", 1.0)
        sigma = inflation * math.hypot(convergence["forward_error_kT"][k], convergence["backward_error_kT"][k])
        if all(map(math.isfinite, (first, last, sigma))) and abs(first - last) > HALVES_MAX_SIGMA * sigma:
            problems.append(f"the first and second halves of the data give {first:.3f} and {last:.3f} kT, "
                            f"{abs(first - last) / sigma:.1f} combined sigmas apart: the samples drift or are "
                            f"correlated over longer than the run, which the uncertainty does not include; "
                            f"equilibrate and sample longer")
    return problems


def _second_law_warnings(w_f, w_r, g) -> list:
    """<W_F> + <W_R> >= 0 when both switches start from equilibrium; a sum significantly
    below zero means the end-state samples were not equilibrated (or the integrator's
    sampling error is large)."""
    total = float(np.mean(w_f) + np.mean(w_r))
    error = math.sqrt(np.var(w_f, ddof=1) / len(w_f) * max(1.0, g["forward"])
                      + np.var(w_r, ddof=1) / len(w_r) * max(1.0, g["reverse"]))
    if total < -3.0 * error and total < -0.01:
        return [f"<W_forward> + <W_reverse> = {total:.3g} kT is below zero by more than 3 standard errors "
                f"({error:.2g} kT): the equilibrium samples at the end states are probably not equilibrated "
                f"(lengthen neq.equilibration_steps or neq.steps_between_samples, or raise the friction in vacuum)"]
    return []


def _empty_convergence(temperature_K) -> dict:
    return {"fraction": [], "forward_kT": [], "forward_error_kT": [], "backward_kT": [], "backward_error_kT": [],
            "temperature_K": temperature_K}


def neq_convergence(w_f, w_r, temperature_K, fractions=CONVERGENCE_FRACTIONS) -> dict:
    """BAR from the first (forward) and last (backward) fraction of both work series."""
    out = {"fraction": [], "forward_kT": [], "forward_error_kT": [], "backward_kT": [], "backward_error_kT": [],
           "temperature_K": temperature_K}
    for fraction in fractions:
        nf = max(2, int(round(fraction * len(w_f))))
        nr = max(2, int(round(fraction * len(w_r))))
        if nf > len(w_f) or nr > len(w_r):
            continue
        forward = bar(w_f[:nf], w_r[:nr])
        backward = bar(w_f[-nf:], w_r[-nr:])
        out["fraction"].append(fraction)
        out["forward_kT"].append(forward[0])
        out["forward_error_kT"].append(forward[1])
        out["backward_kT"].append(backward[0])
        out["backward_error_kT"].append(backward[1])
    return out


# ---- MBAR -----------------------------------------------------------------------------------

def _initial_f_k(u_kn: np.ndarray, N_k: np.ndarray) -> np.ndarray:
    """Starting free energies for MBAR: exponential averaging from each window to the next.

    (pymbar 4.0.3's own ``initialize="BAR"`` crashes with a NameError when BAR does not
    converge between two windows that do not overlap, which is the case we must report.)
    """
    f = np.zeros(len(N_k))
    start = np.concatenate([[0], np.cumsum(N_k)])
    for k in range(len(N_k) - 1):
        du = u_kn[k + 1, start[k]:start[k + 1]] - u_kn[k, start[k]:start[k + 1]]
        if len(du):
            m = np.min(du)
            f[k + 1] = f[k] + m - np.log(np.mean(np.exp(-(du - m))))
        else:
            f[k + 1] = f[k]
    return f


def _mbar(u_kn: np.ndarray, N_k: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # pymbar's default protocol with at most 1000 iterations (instead of 10000): data that
        # well-overlapping windows give converge in far fewer; without overlap the solver
        # would spend minutes, and the overlap check reports the problem anyway.
        protocol = (dict(method="hybr", continuation=True), dict(method="adaptive", options=dict(min_sc_iter=0)))
        return _pymbar().MBAR(u_kn, N_k, initial_f_k=_initial_f_k(u_kn, N_k), maximum_iterations=1000,
                              solver_protocol=protocol)


def _overlap_matrix(u_kn, N_k) -> np.ndarray:
    return np.asarray(_mbar(u_kn, N_k).compute_overlap()["matrix"])


def _stack(windows: List[np.ndarray]):
    """``u_kn`` (states x all samples) and ``N_k`` from per-window arrays of shape (n_k, K)."""
    K = windows[0].shape[1]
    N_k = np.array([len(w) for w in windows], dtype=int)
    u_kn = np.concatenate([np.asarray(w, dtype=float).reshape(-1, K) for w in windows], axis=0).T
    # a per-sample constant does not change MBAR: subtract each sample's smallest value
    u_kn = u_kn - u_kn.min(axis=0, keepdims=True)
    return u_kn, N_k


def decorrelate_windows(windows: List[np.ndarray]):
    """Subsample each window to statistically independent samples.

    The observable of window k is ``u_{k+1} - u_{k-1}`` (its neighbours' energy difference,
    what MBAR between neighbours depends on; one-sided at the ends).

    Returns
    -------
    (list of arrays, list of float)
        The subsampled windows and each window's statistical inefficiency.
    """
    pymbar = _pymbar()
    K = len(windows)
    out, inefficiencies = [], []
    for k, window in enumerate(windows):
        window = np.asarray(window, dtype=float)
        observable = window[:, min(k + 1, K - 1)] - window[:, max(k - 1, 0)]
        g = statistical_inefficiency(observable)
        inefficiencies.append(g)
        if g > 1.0 and np.ptp(observable) > 0:
            indices = pymbar.timeseries.subsample_correlated_data(observable, g=g)
            window = window[np.asarray(indices, dtype=int)]
        out.append(window)
    return out, inefficiencies


def mbar_analysis(windows: List[np.ndarray], temperature_K: float, decorrelate: bool = True,
                  min_overlap: float = 0.0, labels: Optional[Sequence[str]] = None) -> dict:
    """MBAR from samples of K windows.

    Parameters
    ----------
    windows : list of K arrays of shape (n_k, K)
        Reduced potentials (kT) of window k's samples at every state.
    temperature_K : float
    decorrelate : bool
        Subsample each window with :func:`decorrelate_windows` first.
    min_overlap : float
        Smallest acceptable overlap-matrix element between neighbouring windows.
    labels : sequence of str, optional
        Window names used in messages.

    Returns
    -------
    dict
        ``estimate`` (F(last) - F(first), a :class:`FreeEnergy`), ``delta_f_kT`` (F(k) - F(0)),
        ``delta_f_error_kT``, ``neighbour_delta_f_kT``, ``overlap_matrix``,
        ``min_neighbour_overlap``, ``n_samples``, ``n_uncorrelated``,
        ``statistical_inefficiency``, ``effective_samples`` (per state: Kish's effective number
        of MBAR's weights for that state, in independent samples; divided by the largest
        statistical inefficiency when the windows were not decorrelated, whose uncertainties are
        then multiplied by its square root, ``error_inflation_sqrt_g``), ``convergence``.

    Raises
    ------
    InsufficientOverlapError
        When two neighbouring windows overlap less than ``min_overlap``; the exception's
        ``analysis`` attribute holds the results computed anyway.
    """
    K = len(windows)
    if K < 2:
        raise FreeEnergyError("MBAR needs at least two windows")
    windows = [np.asarray(w, dtype=float).reshape(-1, K) for w in windows]
    n_samples = [len(w) for w in windows]
    inefficiencies = [1.0] * K
    if decorrelate:
        windows, inefficiencies = decorrelate_windows(windows)
    u_kn, N_k = _stack(windows)
    mbar = _mbar(u_kn, N_k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = mbar.compute_free_energy_differences()
        overlap = np.asarray(mbar.compute_overlap()["matrix"])
        ess = np.asarray(mbar.compute_effective_sample_number(), dtype=float)
    g_max = 1.0
    if not decorrelate:
        # MBAR's weights and uncertainties count correlated samples as independent: the largest
        # statistical inefficiency of the windows turns them into independent ones
        inefficiencies = [statistical_inefficiency(w[:, min(k + 1, K - 1)] - w[:, max(k - 1, 0)])
                          for k, w in enumerate(windows)]
        g_max = max(1.0, max(inefficiencies))
        ess = ess / g_max
    delta, error = np.asarray(result["Delta_f"]), np.asarray(result["dDelta_f"]) * math.sqrt(g_max)
    neighbour = [min(overlap[k, k + 1], overlap[k + 1, k]) for k in range(K - 1)]
    worst = int(np.argmin(neighbour))
    enough_overlap = neighbour[worst] >= min_overlap
    labels = list(labels) if labels is not None else [str(k) for k in range(K)]
    analysis = {
        "estimate": FreeEnergy(float(delta[0, -1]), float(error[0, -1]), temperature_K),
        "estimator": "MBAR (pymbar 4)",
        "delta_f_kT": delta[0].tolist(), "delta_f_error_kT": error[0].tolist(),
        "neighbour_delta_f_kT": [float(delta[k, k + 1]) for k in range(K - 1)],
        "overlap_matrix": overlap.tolist(),
        "min_neighbour_overlap": float(neighbour[worst]),
        "min_neighbour_overlap_between": [labels[worst], labels[worst + 1]],
        "n_samples": n_samples, "n_uncorrelated": [int(n) for n in N_k],
        "statistical_inefficiency": inefficiencies,
        "error_inflation_sqrt_g": math.sqrt(g_max),
        "effective_samples": {label: float(n) for label, n in zip(labels, ess)},
        # (skipped without overlap: MBAR on fractions of non-overlapping data is slow and meaningless)
        "convergence": mbar_convergence(windows, temperature_K) if enough_overlap else _empty_convergence(temperature_K),
    }
    if not enough_overlap:
        error = InsufficientOverlapError(
            f"windows {labels[worst]} and {labels[worst + 1]} barely overlap: the smallest off-diagonal element "
            f"of the MBAR overlap matrix between neighbouring windows is {neighbour[worst]:.3g} (minimum "
            f"{min_overlap}), so the estimate is unreliable; add windows between them (more lambda values) "
            f"or sample longer")
        error.analysis = analysis
        raise error
    return analysis


def mbar_convergence(windows: List[np.ndarray], temperature_K: float, fractions=CONVERGENCE_FRACTIONS) -> dict:
    """MBAR from the first (forward) and the last (backward) fraction of every window."""
    out = {"fraction": [], "forward_kT": [], "forward_error_kT": [], "backward_kT": [], "backward_error_kT": [],
           "temperature_K": temperature_K}
    for fraction in fractions:
        counts = [max(1, int(round(fraction * len(w)))) for w in windows]
        if any(c > len(w) for c, w in zip(counts, windows)):
            continue
        values = []
        for part in ([w[:c] for w, c in zip(windows, counts)], [w[len(w) - c:] for w, c in zip(windows, counts)]):
            u_kn, N_k = _stack(part)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    r = _mbar(u_kn, N_k).compute_free_energy_differences()
                values.append((float(r["Delta_f"][0, -1]), float(r["dDelta_f"][0, -1])))
            except Exception:  # too few samples for pymbar at small fractions
                values.append((float("nan"), float("nan")))
        out["fraction"].append(fraction)
        out["forward_kT"].append(values[0][0])
        out["forward_error_kT"].append(values[0][1])
        out["backward_kT"].append(values[1][0])
        out["backward_error_kT"].append(values[1][1])
    return out


def jsonable(analysis: dict) -> dict:
    """Analysis dict with :class:`FreeEnergy` values turned into dicts."""
    out = {}
    for key, value in analysis.items():
        if isinstance(value, FreeEnergy):
            out[key] = value.to_dict()
        elif isinstance(value, dict):
            out[key] = jsonable(value)
        elif isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, (np.floating, np.integer)):
            out[key] = value.item()
        else:
            out[key] = value
    return out
