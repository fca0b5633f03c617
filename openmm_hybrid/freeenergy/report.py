"""``openmm-hybrid fe report DIR...``: one table for many free-energy result folders."""
import json
from pathlib import Path
from typing import List, Sequence

from ..errors import FreeEnergyError

COLUMNS = ("run", "workflow", "quantity", "method", "kcal/mol", "+-", "kT", "+-kT", "overlap", "status")


def find_results(paths: Sequence) -> List[Path]:
    """``results.json`` files: given directly, in a given folder, or one level below it."""
    found = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            found.append(path)
        elif (path / "results.json").is_file():
            found.append(path / "results.json")
        elif path.is_dir():
            found.extend(sorted(path.glob("*/results.json")))
        else:
            raise FreeEnergyError(f"'{path}' is neither a results.json file nor a folder")
    if not found:
        raise FreeEnergyError(f"no results.json found in {', '.join(str(p) for p in paths)}")
    return found


def _row(run, workflow, quantity, method, estimate, overlap, status):
    def fmt(x, digits=3):
        return "" if x is None else f"{x:.{digits}f}"
    return {"run": run, "workflow": workflow, "quantity": quantity, "method": method,
            "kcal/mol": fmt(estimate.get("kcal_per_mol")), "+-": fmt(estimate.get("kcal_per_mol_error")),
            "kT": fmt(estimate.get("kT")), "+-kT": fmt(estimate.get("kT_error")),
            "overlap": "" if overlap is None else f"{overlap:.3f}", "status": status}


def rows_from(path: Path) -> List[dict]:
    """Table rows of one ``results.json``."""
    data = json.loads(Path(path).read_text())
    run = str(Path(path).parent)
    workflow = data.get("workflow", "?")
    status = data.get("status", "?")
    if workflow == "hydration":
        rows = []
        overlaps = [leg.get("min_neighbour_overlap") for leg in data.get("legs", {}).values()
                    if leg.get("min_neighbour_overlap") is not None]
        name = data.get("ligand", {}).get("name") or data.get("ligand", {}).get("smiles", "")
        for key, label in (("mm", "dG_hyd MM"), ("ml_mm", "dG_hyd ML/MM")):
            if key in data.get("estimate", {}):
                method = "MBAR" if key == "mm" else f"MBAR + {data['settings']['correction']['method'].upper()}"
                rows.append(_row(run, f"hydration {name}".strip(), label, method, data["estimate"][key],
                                 min(overlaps) if overlaps else None, status))
        return rows
    details = data.get("details", {})
    overlap = details.get("overlap", details.get("min_neighbour_overlap"))
    if workflow == "binding-correction":
        overlaps = [c.get("overlap") for c in data.get("corrections", {}).values() if c.get("overlap") is not None]
        overlap = min(overlaps) if overlaps else None
        method = data.get("settings", {}).get("method", "?").upper()
        rows = [_row(run, workflow, "ddG_corr (complex - solvent)", method, data["estimate"], overlap, status)]
        if "ml_mm_binding" in data:
            rows.append(_row(run, workflow, "dG_bind ML/MM", "MM + correction", data["ml_mm_binding"], None, status))
        return rows
    quantity = {"endstate": "dF MM -> ML/MM"}.get(workflow, data.get("quantity", ""))
    return [_row(run, workflow, quantity, data.get("method", "?").upper(), data.get("estimate", {}), overlap, status)]


def report(paths: Sequence, fmt: str = "text") -> str:
    """The table for ``paths`` as text, Markdown or JSON."""
    rows = [row for path in find_results(paths) for row in rows_from(path)]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    if fmt == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
        return "\n".join(lines)
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS), "  ".join("-" * widths[c] for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)
