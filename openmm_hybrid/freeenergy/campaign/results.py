"""Per-ligand results of a campaign from its calculations, and the statistics over the series.

Binding (Rufa et al. 2020)::

    ddG_corr = dF_corr(complex) - dF_corr(solvent)
    dG(ML/MM) = dG(MM) + ddG_corr             dG(MM): the user's table, from any MM tool

Hydration::

    dG_hyd(MM)    = dF(mm-vacuum) - dF(mm-solvent)          (decoupling legs)
    dG_hyd(ML/MM) = dG_hyd(MM) + dF_corr(solvent) - dF_corr(vacuum)

A ligand's status: ``ok``; ``failed`` (with the reason); ``pending`` (not finished: the campaign
was stopped); or the worst status of its calculations (``insufficient_overlap``,
``insufficient_sampling``; as the single-run workflows), whose numbers are reported but not
counted in the statistics.
"""
import json
from typing import Dict, List, Optional

from ..estimators import FreeEnergy
from ..outcome import combined_status
from .graph import BINDING_CALCULATIONS, HYDRATION_CORRECTIONS, HYDRATION_LEGS
from .statistics import compare
from .store import CampaignStore


def _calculation_summary(results: dict) -> dict:
    details = results.get("details", {})
    summary = {"estimate": results["estimate"], "status": results.get("status", "ok"), "method": results["method"],
               "overlap": details.get("overlap", details.get("min_neighbour_overlap"))}
    for key in ("n_forward", "n_reverse", "dissipation_forward_kT", "dissipation_reverse_kT", "n_uncorrelated"):
        if key in details:
            summary[key] = details[key]
    if results.get("error"):
        summary["error"] = results["error"]
    return summary


def _from_kcal(entry: Optional[dict], temperature_K: float) -> Optional[FreeEnergy]:
    if entry is None:
        return None
    kT_kcal = FreeEnergy(0.0, 0.0, temperature_K).kT_kcal
    return FreeEnergy(entry["dG"] / kT_kcal, entry.get("dG_err", 0.0) / kT_kcal, temperature_K)


def ligand_record(store: CampaignStore, name: str, calculations: List[str], hydration: bool, temperature_K: float,
                  info: dict, failure: Optional[str], mm: Optional[dict], experimental: Optional[dict]) -> dict:
    """One ligand's entry of ``campaign.json``.

    Parameters
    ----------
    name : str
    calculations : list of str
        The ligand's calculations (``complex``, ``solvent`` / MM legs and corrections).
    hydration : bool
    temperature_K : float
    info : dict
        Molecule description (SMILES, net charge, atoms, record).
    failure : str or None
        Why the ligand failed.
    mm, experimental : dict or None
        ``{"dG", "dG_err"}`` in kcal/mol from the user's tables.
    """
    record = {"name": name, **info, "status": "failed" if failure else "pending", "calculations": {}}
    if failure:
        record["reason"] = failure
    if experimental is not None:
        record["experimental"] = _from_kcal(experimental, temperature_K).to_dict()
    if mm is not None and not hydration:
        record["mm"] = _from_kcal(mm, temperature_K).to_dict()
    found = {}
    for calc in calculations:
        path = store.results_path(name, calc)
        if path.is_file():
            results = json.loads(path.read_text())
            record["calculations"][calc] = _calculation_summary(results)
            found[calc] = FreeEnergy.from_dict(results["estimate"])
    if failure or len(found) < len(calculations):
        return record
    record["status"] = combined_status(c["status"] for c in record["calculations"].values())
    if hydration:
        mm_value = found["mm-vacuum"] - found["mm-solvent"]
        record["mm"] = mm_value.to_dict()
        if "correction-solvent" in found:
            record["ml_mm"] = (mm_value + found["correction-solvent"] - found["correction-vacuum"]).to_dict()
            record["correction"] = (found["correction-solvent"] - found["correction-vacuum"]).to_dict()
    else:
        ddg = found["complex"] - found["solvent"]
        record["correction"] = ddg.to_dict()
        if "mm" in record:
            record["ml_mm"] = (FreeEnergy.from_dict(record["mm"]) + ddg).to_dict()
    if "experimental" in record:
        for key in ("mm", "ml_mm"):
            if key in record:
                record[f"error_{key}_kcal_per_mol"] = (record[key]["kcal_per_mol"]
                                                       - record["experimental"]["kcal_per_mol"])
    return record


def calculations_of(hydration: bool, with_ml: bool) -> List[str]:
    if not hydration:
        return list(BINDING_CALCULATIONS)
    return list(HYDRATION_LEGS) + (list(HYDRATION_CORRECTIONS) if with_ml else [])


def series_statistics(records: Dict[str, dict], bootstrap_samples: int, confidence: float, seed: int) -> dict:
    """MAE, RMSE and Kendall tau of MM and ML/MM against experiment, over the ``ok`` ligands."""
    experimental = {n: (r["experimental"]["kcal_per_mol"], r["experimental"]["kcal_per_mol_error"])
                    for n, r in records.items() if r["status"] == "ok" and "experimental" in r}
    out = {}
    for key, label in (("mm", "MM"), ("ml_mm", "ML/MM")):
        predicted = {n: (r[key]["kcal_per_mol"], r[key]["kcal_per_mol_error"])
                     for n, r in records.items() if r["status"] == "ok" and key in r}
        comparison = compare(predicted, experimental, bootstrap_samples, confidence, seed)
        if comparison is not None:
            comparison["label"] = label
            out[key] = comparison
    return out
