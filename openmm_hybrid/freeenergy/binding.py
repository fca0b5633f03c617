"""The ML/MM correction to a binding free energy (Rufa et al. 2020):

    ddG_corr = dF_corr(complex) - dF_corr(solvent)
    dG_bind(ML/MM) = dG_bind(MM) + ddG_corr

where dF_corr(phase) = F(ML/MM) - F(MM) of the ligand in that phase (``lambda_interpolate``
0 -> 1, :mod:`.endstate`).  ``dG_bind(MM)`` comes from any MM free-energy tool; the same
ligand parameters (GAFF2/AM1-BCC as built here) must have been used there.
"""
import copy
from pathlib import Path
from typing import Optional

from .._util import progress
from ..errors import FreeEnergyError
from .checkpoint import SegmentBudget, derived_seed, run_folder
from .endstate import SETTINGS, prepare_settings, run_endstate_directory
from .estimators import FreeEnergy
from .outcome import RESULTS, combined_status, write_json
from .settings import BindingSettings, to_dict, write_settings

PHASES = ("complex", "solvent")


def _ligand_elements(directory) -> Optional[dict]:
    import json
    path = Path(directory) / "embed.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return {"region_elements": info.get("region_elements"), "n_ml_atoms": len(info.get("ml_atoms", [])),
            "model": info.get("model"), "embedding": info.get("embedding")}


def run_binding_correction(complex_dir, solvent_dir, out_dir, settings: Optional[BindingSettings] = None,
                           mm_binding_kcal: Optional[float] = None, mm_binding_error_kcal: float = 0.0,
                           budget: Optional[SegmentBudget] = None, overwrite: bool = False) -> dict:
    """ML/MM correction to a binding free energy from two ``embed --interpolate`` folders.

    Parameters
    ----------
    complex_dir, solvent_dir : str or Path
        The ligand in the complex and the ligand alone in solvent, embedded with the same
        model and embedding, and ``--interpolate``.
    out_dir : str or Path
        Output: ``results.json``, ``settings.yaml``, ``complex/`` and ``solvent/`` (each an
        end-state run with results, plots and checkpoint).
    settings : BindingSettings, optional
        Used for both phases (each phase gets its own seed derived from ``seed``).
    mm_binding_kcal, mm_binding_error_kcal : float, optional
        An MM binding free energy (kcal/mol) to which the correction is added in the results.
    budget : SegmentBudget, optional
    overwrite : bool
        Empty ``out_dir`` first and start afresh.

    Returns
    -------
    dict
        ``results.json``: ``estimate`` (ddG_corr), ``corrections`` per phase and, if an MM
        value was given, ``ml_mm_binding``; ``status``, the worse of the two phases'.
    """
    with run_folder(out_dir, overwrite, [complex_dir, solvent_dir], what="binding-correction") as out:
        return _run_binding_correction(complex_dir, solvent_dir, out, settings, mm_binding_kcal,
                                       mm_binding_error_kcal, budget)


def _run_binding_correction(complex_dir, solvent_dir, out: Path, settings, mm_binding_kcal, mm_binding_error_kcal,
                            budget) -> dict:
    settings = prepare_settings(settings, out, BindingSettings)
    regions = {phase: _ligand_elements(d) for phase, d in zip(PHASES, (complex_dir, solvent_dir))}
    if all(regions.values()):
        a, b = regions["complex"], regions["solvent"]
        if a["region_elements"] != b["region_elements"] or a["model"] != b["model"] \
                or a["embedding"] != b["embedding"]:
            raise FreeEnergyError(
                f"the complex and solvent folders do not hold the same ML region, model and embedding (complex: "
                f"{a}; solvent: {b}); the correction is a difference of the same ligand's corrections")
    write_settings(settings, out / SETTINGS)
    corrections, phase_results = {}, {}
    for phase, directory in zip(PHASES, (complex_dir, solvent_dir)):
        phase_settings = copy.deepcopy(settings)
        phase_settings.seed = derived_seed(settings.seed, phase)
        r = run_endstate_directory(directory, out / phase, phase_settings, budget,
                                   label=f"ML/MM correction in the {phase}")
        corrections[phase] = FreeEnergy.from_dict(r["estimate"])
        phase_results[phase] = {"estimate": r["estimate"], "input": str(Path(directory).resolve()),
                                "method": r["method"], "status": r["status"],
                                "overlap": r["details"].get("overlap", r["details"].get("min_neighbour_overlap"))}
    ddg = corrections["complex"] - corrections["solvent"]
    results = {"workflow": "binding-correction",
               "quantity": "ddG_corr = dF_corr(complex) - dF_corr(solvent), to add to an MM binding free energy",
               "estimate": ddg.to_dict(), "corrections": phase_results, "seed": settings.seed,
               "settings": to_dict(settings),
               "status": combined_status(r["status"] for r in phase_results.values())}
    if mm_binding_kcal is not None:
        mm = FreeEnergy(mm_binding_kcal / ddg.kT_kcal, mm_binding_error_kcal / ddg.kT_kcal, ddg.temperature_K)
        results["mm_binding"] = mm.to_dict()
        results["ml_mm_binding"] = (mm + ddg).to_dict()
    write_json(out / RESULTS, results)
    progress(f"binding correction: ddG = {ddg} (status {results['status']}); results in {out / RESULTS}")
    return results
