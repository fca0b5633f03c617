"""The warm-up before production MD reaches the bath temperature within its stated length.

The system: 30 copies of a capped tripeptide 3 nm apart (MM, amber14, HBonds, a 1 nm cutoff so the
copies do not interact): 1260 atoms, 3147 degrees of freedom, cheap, and with a kinetic
temperature whose fluctuation sigma_T = T sqrt(2 / N_dof) = 7.6 K at 300 K.
"""
import csv
import json

import numpy as np
import openmm
import openmm.app as app
import pytest
from openmm import unit

from helpers import EXAMPLES
from openmm_hybrid.dynamics.integrators import create_mts_langevin_integrator
from openmm_hybrid.dynamics.simulation import degrees_of_freedom, run_simulation
from openmm_hybrid.dynamics.warmup import instantaneous_temperature, warm_up
from openmm_hybrid.errors import HybridError

TARGET = 300.0
WARMUP_STEPS = 400


@pytest.fixture(scope="module")
def copies():
    pdb = app.PDBFile(str(EXAMPLES / "inputs" / "thiolate-peptide.pdb"))
    modeller = app.Modeller(app.Topology(), [])
    xyz = pdb.positions.value_in_unit(unit.nanometer)
    for i in range(30):
        shift = openmm.Vec3(3.0 * (i % 6), 3.0 * (i // 6), 0.0)
        modeller.add(pdb.topology, [p + shift for p in xyz] * unit.nanometer)
    system = app.ForceField("amber14-all.xml").createSystem(
        modeller.topology, nonbondedMethod=app.CutoffNonPeriodic, nonbondedCutoff=1.0 * unit.nanometer,
        constraints=app.HBonds)
    return modeller.topology, system, modeller.positions


def minimised(copies, integrator):
    topology, system, positions = copies
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                                {"Threads": "1"})
    simulation.context.setPositions(positions)
    openmm.LocalEnergyMinimizer.minimize(simulation.context, 10.0, 200)
    return simulation


def mean_temperature(simulation, n_dof, steps=200, every=2):
    samples = []
    for _ in range(steps // every):
        simulation.step(every)
        samples.append(instantaneous_temperature(simulation.context, n_dof))
    return float(np.mean(samples))


def langevin(seed):
    integrator = openmm.LangevinMiddleIntegrator(TARGET * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    return integrator


def test_warmup_reaches_the_target_within_its_length(copies):
    """After WARMUP_STEPS steps the next 0.2 ps average at the target; without warm-up they are far below."""
    n_dof = degrees_of_freedom(copies[1])
    sigma = TARGET * np.sqrt(2.0 / n_dof)
    # The window mean of the instantaneous temperature fluctuates by at most sigma (fully
    # correlated samples); 3 sigma = 23 K.
    cold = minimised(copies, langevin(1))
    cold.context.setVelocitiesToTemperature(TARGET * unit.kelvin, 1)
    without = mean_temperature(cold, n_dof)
    assert without < TARGET - 5 * sigma  # the minimised structure absorbs the kinetic energy (~180 K)

    warm = minimised(copies, langevin(1))
    settings = warm_up(warm, TARGET * unit.kelvin, WARMUP_STEPS, n_dof, seed=1)
    assert settings["steps"] == WARMUP_STEPS and settings["start_temperature_k"] == pytest.approx(30.0)
    assert warm.currentStep == WARMUP_STEPS
    assert abs(mean_temperature(warm, n_dof) - TARGET) < 3 * sigma
    assert warm.integrator.getTemperature().value_in_unit(unit.kelvin) == pytest.approx(TARGET)


def test_warmup_with_the_multiple_time_step_integrator(copies):
    """The RESPA integrator's bath (its kT variable) follows the stages and ends at the target
    (the integrator is made for 200 K, the warm-up's target is 300 K)."""
    topology, system, positions = copies
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))  # a copy with own groups
    for force in system.getForces():
        force.setForceGroup(1 if isinstance(force, openmm.NonbondedForce) else 0)
    integrator = create_mts_langevin_integrator(1 * unit.femtosecond, 2, {"fast": [0], "slow": 1}, 200.0,
                                                system=system, seed=2)
    simulation = minimised((topology, system, positions), integrator)
    settings = warm_up(simulation, TARGET, 40, degrees_of_freedom(system), seed=2)
    r = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
    assert integrator.getGlobalVariableByName("kT") == pytest.approx(r * TARGET)
    assert settings["final_temperature_k"] > 0.8 * TARGET


def test_run_records_the_warmup(copies, tmp_path):
    topology, system, positions = copies
    result = run_simulation(system, topology, positions, tmp_path, steps=10, report_interval=5, platform="CPU",
                            minimize_iterations=20, warmup_steps=30)
    assert result["warmup"]["steps"] == 30 and result["warmup"]["target_temperature_k"] == TARGET
    assert json.loads((tmp_path / "run.json").read_text())["warmup"]["interval"] == 10
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["step"]) for r in rows] == [0, 5, 10]  # production counts from 0 after the warm-up
    with pytest.raises(HybridError, match=r"warm-up steps must be >= 0, not -1"):
        run_simulation(system, topology, positions, tmp_path / "x", steps=1, warmup_steps=-1, platform="CPU")
    with pytest.raises(HybridError, match=r"warm-up needs .* 0 < start temperature <= target \(400.0 K, 300.0 K\)"):
        warm_up(minimised(copies, langevin(3)), TARGET, 10, 100, start_temperature=400)
