"""Plots of free-energy runs (matplotlib, Agg backend, PNG files).

- work distributions: forward W and reverse -W histograms (Crooks: they cross at dF),
- the MBAR overlap matrix,
- forward/backward convergence of the estimate.
"""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .sampler import KJ_PER_KCAL, thermal_energy


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_work_distributions(w_forward, w_reverse, estimate_kT: float, path, title: str = "",
                            temperature_K: Optional[float] = None) -> Path:
    """Histograms of forward works and negated reverse works with the BAR estimate.

    Works are shifted by the estimate so that large constant offsets (an ML potential's
    atomic reference energies) do not hide the shapes; the shift is given on the axis.
    """
    plt = pyplot()
    w_f = np.asarray(w_forward, dtype=float) - estimate_kT
    w_r = -np.asarray(w_reverse, dtype=float) - estimate_kT
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([w_f, w_r]), bins=max(10, min(50, len(w_f) // 3)))
    ax.hist(w_f, bins=bins, alpha=0.55, density=True, label=f"forward W (0 -> 1), n={len(w_f)}")
    ax.hist(w_r, bins=bins, alpha=0.55, density=True, label=f"reverse -W (1 -> 0), n={len(w_r)}")
    ax.axvline(0.0, color="k", lw=1, label="BAR estimate")
    ax.set_xlabel(f"work relative to the BAR estimate ({estimate_kT:.6g} kT)  [kT]")
    ax.set_ylabel("probability density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_overlap_matrix(matrix, path, labels: Optional[Sequence[str]] = None, title: str = "") -> Path:
    """The MBAR overlap matrix with its values written in the cells."""
    plt = pyplot()
    matrix = np.asarray(matrix, dtype=float)
    K = len(matrix)
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * K + 1.5), max(3.5, 0.45 * K + 1)))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(0.5, matrix.max()))
    if K <= 25:
        for i in range(K):
            for j in range(K):
                if matrix[i, j] >= 0.005:
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if matrix[i, j] > 0.35 else "black")
    ticks = list(range(K))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if labels is not None:
        ax.set_xticklabels(labels, rotation=90, fontsize=6)
        ax.set_yticklabels(labels, fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title or "MBAR overlap matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_convergence(convergence: dict, path, title: str = "") -> Path:
    """Estimate (kcal/mol) from the first and from the last fraction of the data."""
    plt = pyplot()
    scale = thermal_energy(convergence["temperature_K"]) / KJ_PER_KCAL
    fraction = np.asarray(convergence["fraction"], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, name in (("forward", "first fraction (forward)"), ("backward", "last fraction (backward)")):
        value = np.asarray(convergence[f"{key}_kT"], dtype=float) * scale
        error = np.asarray(convergence[f"{key}_error_kT"], dtype=float) * scale
        ax.errorbar(fraction, value, yerr=error, marker="o", ms=4, capsize=3, label=name)
    if len(fraction):
        final = np.asarray(convergence["forward_kT"], dtype=float)[-1] * scale
        ax.axhline(final, color="k", lw=0.8, ls="--")
    ax.set_xlabel("fraction of the data")
    ax.set_ylabel("free energy [kcal/mol]")
    ax.set_title(title or "forward/backward convergence")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
