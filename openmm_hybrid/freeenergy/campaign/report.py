"""What a campaign writes at the end of every run, and ``openmm-hybrid fe report DIR``.

- ``campaign.json``: settings, seed, execution (where, how many units, reruns), per ligand its
  status (with the reason when it failed), calculations, corrections, MM and ML/MM values,
  experimental values and errors, and the statistics over the series;
- ``campaign.csv``: one row per ligand (kcal/mol);
- ``plots/`` (:mod:`.plots`).

:func:`summarise` turns a campaign folder into a text, Markdown or JSON summary; a folder whose
campaign is still running (no ``campaign.json`` yet) is summarised from ``progress.json``.
"""
import csv
import io
import json
from pathlib import Path
from typing import Dict, List

from ...errors import CampaignError
from . import plots
from .statistics import format_statistic
from .store import CampaignStore

CAMPAIGN_FILE = "campaign.json"
TABLE_FILE = "campaign.csv"
PLOTS = "plots"
QUANTITIES = {  # CSV column prefix -> record key
    "binding": (("ddG_corr", "correction"), ("dG_mm", "mm"), ("dG_ml_mm", "ml_mm"), ("dG_exp", "experimental")),
    "hydration": (("dG_hyd_mm", "mm"), ("dG_hyd_ml_mm", "ml_mm"), ("correction", "correction"),
                  ("dG_exp", "experimental")),
}


def is_campaign(directory) -> bool:
    directory = Path(directory)
    return (directory / CAMPAIGN_FILE).is_file() or (directory / "progress.json").is_file()


def table_rows(summary: dict) -> List[Dict[str, str]]:
    """One row per ligand: status, per-calculation estimates and the cycle's quantities (kcal/mol)."""
    rows = []
    calcs = summary["calculations"]
    for name, record in summary["ligands"].items():
        row = {"name": name, "status": record["status"]}
        for calc in calcs:
            entry = record.get("calculations", {}).get(calc)
            row[f"dF_{calc}_kcal"] = _number(entry["estimate"]["kcal_per_mol"]) if entry else ""
            row[f"dF_{calc}_err"] = _number(entry["estimate"]["kcal_per_mol_error"]) if entry else ""
        for column, key in QUANTITIES[summary["workflow"]]:
            row[f"{column}_kcal"] = _number(record[key]["kcal_per_mol"]) if key in record else ""
            row[f"{column}_err"] = _number(record[key]["kcal_per_mol_error"]) if key in record else ""
        for key in ("mm", "ml_mm"):
            row[f"error_{key}_kcal"] = _number(record.get(f"error_{key}_kcal_per_mol"))
        row["reason"] = record.get("reason", "")
        rows.append(row)
    return rows


def _number(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_outputs(store: CampaignStore, summary: dict, make_plots: bool, min_overlap: float) -> None:
    """``campaign.json``, ``campaign.csv`` and (``make_plots``) the plots."""
    if make_plots:
        folder = store.root / PLOTS
        folder.mkdir(exist_ok=True)
        made = [plots.plot_corrections(summary["ligands"], summary["workflow"], folder / "corrections.png"),
                plots.plot_predicted_vs_experimental(summary["ligands"], summary["statistics"],
                                                     folder / "predicted_vs_experimental.png"),
                plots.plot_work_grid(_works(store, summary), folder / "work_distributions.png"),
                plots.plot_overlap(summary["ligands"], min_overlap, folder / "overlap.png")]
        summary["plots"] = [str(p.relative_to(store.root)) for p in made if p is not None]
    rows = table_rows(summary)
    stream = io.StringIO()
    if rows:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store.write_json(CAMPAIGN_FILE, summary)
    (store.root / TABLE_FILE).write_text(stream.getvalue())


def _works(store: CampaignStore, summary: dict) -> Dict[str, Dict[str, dict]]:
    works = {}
    for name, record in summary["ligands"].items():
        works[name] = {}
        for calc, entry in record.get("calculations", {}).items():
            if entry.get("method") != "neq":
                continue
            data = json.loads(store.results_path(name, calc).read_text())
            if "works_kT" in data:
                works[name][calc] = {**data["works_kT"], "estimate_kT": data["estimate"]["kT"]}
    return works


def summarise(directory, fmt: str = "text") -> str:
    """Summary of a campaign folder: ligands, statuses, results, statistics, failures."""
    directory = Path(directory)
    path = directory / CAMPAIGN_FILE
    if not path.is_file():
        snapshot = CampaignStore(directory).read_json("progress.json")
        if snapshot is None:
            raise CampaignError(f"'{directory}' is not a campaign folder (no {CAMPAIGN_FILE} or progress.json)")
        if fmt == "json":
            return json.dumps(snapshot, indent=2)
        lines = [f"campaign in '{directory}' (running or stopped; no {CAMPAIGN_FILE} yet): "
                 f"{snapshot['units_done']}/{snapshot['units_total']} units at {snapshot['time']}"]
        lines += [f"  {name}: {e['done']}/{e['total']} units, {e['status']}" for name, e in snapshot["ligands"].items()]
        return "\n".join(lines)
    summary = json.loads(path.read_text())
    if fmt == "json":
        return json.dumps(summary, indent=2)
    rows = table_rows(summary)
    columns = ["name", "status"] + [f"{c}_kcal" for c, _ in QUANTITIES[summary["workflow"]]] + \
        ["error_mm_kcal", "error_ml_mm_kcal"]
    shown = [c for c in columns if any(r.get(c) for r in rows)]
    cells = [{c: _with_error(r, c) for c in shown} for r in rows]
    execution = summary.get("execution", {})
    header = [f"{summary['workflow']} campaign in '{directory}': {summary['status']}; "
              f"{summary['counts']['ok']} ok, {summary['counts']['failed']} failed, "
              f"{summary['counts']['other']} other, {summary['counts']['pending']} pending of "
              f"{len(summary['ligands'])} ligands (seed {summary['seed']}; units {execution.get('units_done')}/"
              f"{execution.get('units_total')})", ""]
    table = _format_table(shown, cells, markdown=fmt == "markdown")
    footer = [""]
    for key, stats in summary.get("statistics", {}).items():
        footer.append(f"{stats['label']} vs experiment (n = {stats['n']}, {int(100 * stats['confidence'])}% "
                      f"bootstrap intervals): MAE {format_statistic(stats['mae'])} kcal/mol, RMSE "
                      f"{format_statistic(stats['rmse'])} kcal/mol, Kendall tau "
                      f"{format_statistic(stats['kendall_tau'])}")
    for name, record in summary["ligands"].items():
        if record.get("reason"):
            footer.append(f"{name} failed: {record['reason']}")
    return "\n".join(header + table + footer).rstrip()


def _with_error(row: dict, column: str) -> str:
    value = row.get(column, "")
    error = row.get(column[:-len("_kcal")] + "_err", "") if column.endswith("_kcal") else ""
    return f"{value} +- {error}" if value and error else value


def _format_table(columns: List[str], rows: List[dict], markdown: bool) -> List[str]:
    if markdown:
        return ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"] + \
            ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) if rows else len(c) for c in columns}
    return ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)] + \
        ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
