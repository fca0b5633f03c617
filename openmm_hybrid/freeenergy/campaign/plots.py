"""Plots of a campaign (matplotlib, Agg backend, PNG), what a practitioner looks at first.

- ``corrections.png``: the ML/MM correction per ligand with its one-sigma error bar;
- ``predicted_vs_experimental.png``: MM and ML/MM against experiment side by side, with
  MAE, RMSE and Kendall tau and their bootstrap intervals;
- ``work_distributions.png``: per ligand and phase, forward W and reverse -W (NEQ);
- ``overlap.png``: per ligand and calculation, the overlap (forward/reverse works, or the worst
  pair of neighbouring MBAR windows) against the acceptance threshold.

Each calculation's own plots (work distributions, overlap matrix, convergence) are in its folder.
"""
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..plots import pyplot
from .statistics import format_statistic

CORRECTION_LABEL = {"binding": "ddG_corr = dF_corr(complex) - dF_corr(solvent)",
                    "hydration": "dG_hyd(ML/MM) - dG_hyd(MM)"}


def _ok(records: Dict[str, dict], key: str) -> List[dict]:
    return [r for r in records.values() if r["status"] == "ok" and key in r]


def plot_corrections(records: Dict[str, dict], workflow: str, path) -> Optional[Path]:
    """Correction per ligand (kcal/mol) with one-sigma error bars."""
    rows = _ok(records, "correction")
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(rows) + 2), 4))
    x = np.arange(len(rows))
    ax.errorbar(x, [r["correction"]["kcal_per_mol"] for r in rows],
                yerr=[r["correction"]["kcal_per_mol_error"] for r in rows], fmt="o", capsize=3)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([r["name"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("correction [kcal/mol]")
    ax.set_title(CORRECTION_LABEL[workflow], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_predicted_vs_experimental(records: Dict[str, dict], statistics: dict, path) -> Optional[Path]:
    """MM and ML/MM against experiment, each with its statistics."""
    panels = [key for key in ("mm", "ml_mm") if key in statistics]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    values = [r[k]["kcal_per_mol"] for k in panels + ["experimental"] for r in _ok(records, k)]
    low, high = min(values) - 1.0, max(values) + 1.0
    for ax, key in zip(axes[0], panels):
        rows = [r for r in _ok(records, key) if "experimental" in r]
        ax.fill_between([low, high], [low - 1, high - 1], [low + 1, high + 1], color="0.9", label="+-1 kcal/mol")
        ax.plot([low, high], [low, high], color="k", lw=0.8)
        ax.errorbar([r["experimental"]["kcal_per_mol"] for r in rows], [r[key]["kcal_per_mol"] for r in rows],
                    xerr=[r["experimental"]["kcal_per_mol_error"] for r in rows],
                    yerr=[r[key]["kcal_per_mol_error"] for r in rows], fmt="o", capsize=2, ms=4)
        stats = statistics[key]
        ax.text(0.04, 0.96, f"n = {stats['n']}\nMAE {format_statistic(stats['mae'])}\n"
                            f"RMSE {format_statistic(stats['rmse'])}\n"
                            f"Kendall tau {format_statistic(stats['kendall_tau'])}",
                transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("experimental [kcal/mol]")
        ax.set_ylabel(f"{stats['label']} [kcal/mol]")
        ax.set_title(f"{stats['label']} vs experiment ({int(100 * stats['confidence'])}% intervals)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_work_grid(works: Dict[str, Dict[str, dict]], path) -> Optional[Path]:
    """Forward W and reverse -W of every ligand (rows) and phase (columns), shifted by the estimate.

    ``works[ligand][calculation] = {"forward": [...], "reverse": [...], "estimate_kT": float}``.
    """
    ligands = [name for name, calcs in works.items() if calcs]
    if not ligands:
        return None
    columns = sorted({c for name in ligands for c in works[name]})
    plt = pyplot()
    fig, axes = plt.subplots(len(ligands), len(columns), figsize=(3.4 * len(columns), 2.0 * len(ligands) + 0.6),
                             squeeze=False)
    for i, name in enumerate(ligands):
        for j, calc in enumerate(columns):
            ax = axes[i][j]
            data = works[name].get(calc)
            if data is None:
                ax.axis("off")
                continue
            w_f = np.asarray(data["forward"], dtype=float) - data["estimate_kT"]
            w_r = -np.asarray(data["reverse"], dtype=float) - data["estimate_kT"]
            bins = np.histogram_bin_edges(np.concatenate([w_f, w_r]), bins=max(8, min(40, len(w_f) // 3)))
            ax.hist(w_f, bins=bins, alpha=0.55, density=True, label="forward W")
            ax.hist(w_r, bins=bins, alpha=0.55, density=True, label="reverse -W")
            ax.axvline(0.0, color="k", lw=0.8)
            ax.set_title(f"{name} {calc}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(ligands) - 1:
                ax.set_xlabel("W - dF [kT]", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_overlap(records: Dict[str, dict], threshold: float, path) -> Optional[Path]:
    """Overlap of each ligand's calculations, with the threshold below which results are flagged."""
    rows = [(r["name"], calc, c["overlap"]) for r in records.values()
            for calc, c in r.get("calculations", {}).items() if c.get("overlap") is not None]
    if not rows:
        return None
    plt = pyplot()
    calcs = sorted({calc for _, calc, _ in rows})
    names = list(dict.fromkeys(name for name, _, _ in rows))
    width = 0.8 / len(calcs)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 4))
    for k, calc in enumerate(calcs):
        lookup = {name: value for name, c, value in rows if c == calc}
        x = [i + (k - (len(calcs) - 1) / 2) * width for i, name in enumerate(names) if name in lookup]
        ax.bar(x, [lookup[n] for n in names if n in lookup], width=width, label=calc)
    ax.axhline(threshold, color="r", lw=1, ls="--", label=f"min_overlap {threshold:g}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("overlap (0: none, 0.5: identical)")
    ax.set_ylim(0.0, max(0.55, 1.1 * max(value for _, _, value in rows)))
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("forward/reverse work overlap (NEQ),\nworst neighbouring windows (MBAR)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
