"""Free-energy workflows on real ML/MM systems (ANI-2x, mechanical embedding).

- The MM -> ANI-2x end-state correction of methanol, in vacuum and in water, by
  nonequilibrium switching + BAR and by MBAR: two independent routes to the same number.
- The hydration workflow end to end at toy size (methane): files, the thermodynamic cycle's
  arithmetic, the report table, refusal of a charged ligand.
"""
import json
import math

import pytest

from helpers import requires_ani, requires_emle
from openmm_hybrid.testing import emle_model_path
from openmm_hybrid.errors import FreeEnergyError
from openmm_hybrid.freeenergy import run_endstate, run_hydration
from openmm_hybrid.freeenergy.settings import (EndstateSettings, HydrationSettings, MBARSettings, NEQSettings,
                                               SimulationSettings, load_settings)

pytestmark = requires_ani


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """ANI-2x on a few atoms gains nothing from several threads, and on a busy machine
    spinning OpenMP threads slow every step down many times over."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def methanol_systems(ani_single):
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.hybrid import create_hybrid_system
    systems = {}
    for solvent, options in (("vacuum", {}), ("explicit", {"padding": 0.6, "nonbonded_cutoff": 0.6})):
        built = build_system(ligand="CO", solvent=solvent, **options)
        hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_single, interpolate=True)
        systems[solvent] = (built, hybrid)
    return systems


def correction_settings(method):
    return EndstateSettings(
        method=method, seed=31,
        # constant volume: the toy box (1.2 nm) could shrink below twice the cutoff under NPT
        simulation=SimulationSettings(temperature_K=300.0, timestep_fs=1.0, friction_per_ps=5.0, platform="CPU",
                                      minimize_iterations=50, pressure_bar=None),
        neq=NEQSettings(n_switches=10, switch_steps=15, equilibration_steps=40, steps_between_samples=12,
                        samples_per_segment=10, switches_per_segment=10),
        mbar=MBARSettings(lambdas=[0.0, 0.5, 1.0], equilibration_steps=40, n_samples=10, steps_between_samples=12,
                          samples_per_segment=10),
        min_overlap=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("solvent", ["vacuum", "explicit"])
def test_neq_and_mbar_agree_on_methanol_correction(methanol_systems, solvent, tmp_path):
    built, hybrid = methanol_systems[solvent]
    box = built.topology.getPeriodicBoxVectors()
    results = {}
    for method in ("neq", "mbar"):
        results[method] = run_endstate(hybrid.system, built.positions, tmp_path / method, correction_settings(method),
                                       box_vectors=box, metadata=hybrid.metadata())
    neq, mbar = results["neq"]["estimate"], results["mbar"]["estimate"]
    # ANI-2x's atomic reference energies make dF about -1.2e5 kT for methanol
    assert -1.3e5 < neq["kT"] < -1.1e5
    combined = math.hypot(neq["kT_error"], mbar["kT_error"])
    assert combined < 0.6                                     # precise enough to compare
    assert abs(neq["kT"] - mbar["kT"]) < 3 * combined, (neq, mbar)
    assert "linear in lambda_interpolate (checked)" in results["neq"]["sampler"]["energy_evaluation"]
    assert results["neq"]["input"]["model"] == "ani2x"


@pytest.mark.slow
def test_hydration_workflow_end_to_end(tmp_path, capsys):
    from openmm_hybrid.cli import main
    settings = load_settings(HydrationSettings, None, [
        "seed=11", "build.padding_nm=0.7", "build.nonbonded_cutoff_nm=0.6", "build.box_shape=cube",
        "simulation.platform=CPU", "simulation.timestep_fs=1.0", "simulation.minimize_iterations=50",
        "alchemical.electrostatics_lambdas=[1.0, 0.0]", "alchemical.sterics_lambdas=[1.0, 0.5, 0.0]",
        "alchemical.solvent={equilibration_steps: 20, n_samples: 6, steps_between_samples: 10, samples_per_segment: 6}",
        "alchemical.vacuum={equilibration_steps: 20, n_samples: 6, steps_between_samples: 10, samples_per_segment: 6}",
        "correction.method=neq", "correction.min_overlap=0.0", "correction.simulation.platform=CPU",
        "correction.simulation.minimize_iterations=20", "correction.simulation.pressure_bar=null",
        "correction.neq={n_switches: 4, switch_steps: 5, equilibration_steps: 10, steps_between_samples: 5, "
        "switches_per_segment: 4}",
        "correction.min_overlap=0.0"])
    settings.correction.min_overlap = 0.0
    result = run_hydration("C", tmp_path / "methane", settings)
    out = tmp_path / "methane"
    for path in ("results.json", "settings.yaml", "mm-solvent/overlap_matrix.png", "mm-vacuum/convergence.png",
                 "correction-solvent/work_distributions.png", "correction-vacuum/results.json",
                 "build/solvent/system.xml"):
        assert (out / path).is_file(), path
    legs = {phase: json.loads((out / f"mm-{phase}" / "results.json").read_text())["estimate"]["kT"]
            for phase in ("solvent", "vacuum")}
    corrections = {phase: json.loads((out / f"correction-{phase}" / "results.json").read_text())["estimate"]["kT"]
                   for phase in ("solvent", "vacuum")}
    mm, ml_mm = result["estimate"]["mm"], result["estimate"]["ml_mm"]
    assert mm["kT"] == pytest.approx(legs["vacuum"] - legs["solvent"], abs=1e-9)
    assert ml_mm["kT"] == pytest.approx(mm["kT"] + corrections["solvent"] - corrections["vacuum"], abs=1e-6)
    # methane has no intramolecular electrostatics (all pairs excluded): the vacuum leg is exactly zero
    assert legs["vacuum"] == pytest.approx(0.0, abs=1e-9)
    assert abs(ml_mm["kcal_per_mol"]) < 20    # the ANI reference energies cancel between water and vacuum

    assert main(["fe", "report", str(out)]) == 0
    table = capsys.readouterr().out
    assert "dG_hyd MM" in table and "dG_hyd ML/MM" in table


def test_charged_ligand_is_refused_for_hydration(tmp_path):
    with pytest.raises(FreeEnergyError, match="net charge -1.*co-alchemical counter-ion"):
        run_hydration("CC(=O)[O-]", tmp_path, HydrationSettings())


def test_charged_region_is_refused_for_a_neutral_model(tmp_path):
    from openmm_hybrid.freeenergy.endstate import check_region_charge
    with pytest.raises(FreeEnergyError, match="net charge \\+1 e.*neutral molecules only"):
        check_region_charge({"region_net_charge": 1, "model": "ani2x", "model_supports_charge": False})
    check_region_charge({"region_net_charge": 1, "model": "charged.pt", "model_supports_charge": True})


@requires_emle
def test_electrostatic_embedding_energies_are_linear_in_lambda(ani_single):
    """EMLE's coupling is scaled by lambda_interpolate too: the fast path (one evaluation,
    energies at every lambda from dE/dlambda) is taken and equals explicit evaluation."""
    import numpy as np
    from openmm import unit
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.freeenergy.sampler import ChainState, StateSampler
    from openmm_hybrid.hybrid import create_hybrid_system
    built = build_system(ligand="CO", solvent="explicit", padding=0.9, nonbonded_cutoff=0.6, box_shape="cube")
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_single,
                                  embedding="electrostatic", interpolate=True, positions=built.positions,
                                  emle_model=str(emle_model_path()), embedding_cutoff=0.6)
    simulation = SimulationSettings(platform="CPU", pressure_bar=None)
    sampler = StateSampler(hybrid.system, ["lambda_interpolate"], simulation)
    box = np.array(built.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer))
    state = ChainState(np.array(built.positions.value_in_unit(unit.nanometer)), None, box)
    sampler.start_segment(state, 1, {"lambda_interpolate": 0.4})
    assert sampler.check_linearity("lambda_interpolate") is True
    states = [{"lambda_interpolate": x} for x in (0.0, 0.25, 1.0)]
    fast = sampler.reduced_potentials(states, {"lambda_interpolate": 0.4})
    sampler.linear_parameter = None
    explicit = sampler.reduced_potentials(states, {"lambda_interpolate": 0.4})
    assert np.allclose(fast, explicit, rtol=1e-12, atol=1e-6)
    # the EMLE coupling really contributes to dE/dlambda (not only ANI-2x and the MM terms)
    groups = {f.getName() for f in sampler.system.getForces() if f.getForceGroup() in sampler.groups}
    assert "EMLEEmbedding" in groups, groups
