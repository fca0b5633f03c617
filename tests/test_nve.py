"""Energy conservation of ML/MM dynamics (velocity Verlet, solvated ligand)."""
import numpy as np
import openmm
import pytest
from openmm import unit

from conftest import requires_ani
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.simulate import degrees_of_freedom

pytestmark = requires_ani

KB = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
# |drift| bound in kT per ns per degree of freedom, for 1 ps of velocity Verlet at 0.5 fs with
# PME at ewaldErrorTolerance 1e-5 (at the default 5e-4 the PME discretisation alone drifts by
# ~0.08 here, ML or not).  Measured on this system: ML/MM (float32 ANI-2x) +0.016; over six NMA
# boxes, mechanical and EMLE embedding -0.04 to +0.03 (1 ps each); the openmm-ml control below,
# whose forces are inconsistent with its energy, drifts far more.
DRIFT_BOUND_KT = 0.1


def tighten_pme(system, tolerance=1e-5):
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setEwaldErrorTolerance(tolerance)
    return system


def velocity_verlet(timestep):
    """Velocity Verlet with RATTLE-style constraint handling (OpenMM's CustomIntegrator recipe)."""
    integrator = openmm.CustomIntegrator(timestep)
    integrator.addPerDofVariable("x1", 0)
    integrator.addUpdateContextState()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m")
    integrator.addComputePerDof("x", "x+dt*v")
    integrator.addComputePerDof("x1", "x")
    integrator.addConstrainPositions()
    integrator.addComputePerDof("v", "v+0.5*dt*f/m+(x-x1)/dt")
    integrator.addConstrainVelocities()
    integrator.setConstraintTolerance(1e-8)
    return integrator


def nve_drift(system, positions, box, steps=2000, timestep=0.5 * unit.femtosecond, report=10,
              temperature=300 * unit.kelvin, seed=1, properties=None):
    """Equilibrate briefly with Langevin, then run NVE; return (drift kT/ns/dof, rms kJ/mol, n_dof).
    ``properties``: CPU platform properties for both runs."""
    state = equilibrate(system, positions, box, timestep, temperature, seed, properties=properties)
    return measure_drift(system, state, box, velocity_verlet(timestep), steps, report, temperature,
                         properties=properties)


def equilibrate(system, positions, box, timestep=0.5 * unit.femtosecond, temperature=300 * unit.kelvin, seed=1,
                steps=200, minimize_system=None, properties=None):
    """Minimise, set velocities and run ``steps`` Langevin steps; return the State (positions, velocities).

    ``minimize_system`` (e.g. the all-MM System) is minimised instead of ``system``: L-BFGS on the
    ML/MM System needs several force evaluations per iteration (float32 ML energies make its line
    search work hard), on the MM System they are cheap.  ``properties``: CPU platform properties
    (e.g. one thread and deterministic forces, for a reproducible trajectory).
    """
    platform = openmm.Platform.getPlatformByName("CPU")
    properties = properties or {}
    if minimize_system is not None:
        context = openmm.Context(minimize_system, openmm.VerletIntegrator(0.001), platform, properties)
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
        positions = context.getState(getPositions=True).getPositions()
        del context
    langevin = openmm.LangevinMiddleIntegrator(temperature, 5 / unit.picosecond, timestep)
    langevin.setRandomNumberSeed(seed)
    context = openmm.Context(system, langevin, platform, properties)
    context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    if minimize_system is None:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)
    context.setVelocitiesToTemperature(temperature, seed)
    langevin.step(steps)
    return context.getState(getPositions=True, getVelocities=True)


def measure_drift(system, state, box, integrator, steps=2000, report=10, temperature=300 * unit.kelvin,
                  properties=None, settle=20):
    """Run ``steps`` steps of the NVE ``integrator`` from ``state``; fit the total energy linearly.

    The first ``settle`` steps are run before the first sample: the state handed over by another
    integrator is not one of this integrator's (LangevinMiddleIntegrator's velocities lag the
    positions by half a step, and their kinetic energy is systematically higher than on-step
    velocities'; its constraints were met to a looser tolerance).  The total energy drops once,
    in the first steps, by 2.0-2.1 kJ/mol on the 1300-atom NMA box in every run measured; fitted
    with the drift, that one drop biased 0.5 ps measurements by -0.03 to -0.04 kT/ns/dof.

    Returns (drift in kT per ns per degree of freedom, rms of the residual in kJ/mol, n_dof).
    """
    timestep = integrator.getStepSize()
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), properties or {})
    context.setPeriodicBoxVectors(*box)
    context.setPositions(state.getPositions())
    context.setVelocities(state.getVelocities())
    integrator.step(settle)
    times, energies = [], []
    for i in range(steps // report + 1):
        s = context.getState(getEnergy=True)
        times.append(i * report * timestep.value_in_unit(unit.nanosecond))
        energies.append((s.getPotentialEnergy() + s.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole))
        integrator.step(report)
    times, energies = np.array(times[:-1]), np.array(energies[:-1])
    slope = np.polyfit(times, energies, 1)[0]  # kJ/mol/ns
    n_dof = degrees_of_freedom(system)
    drift = slope / n_dof / (KB * temperature.value_in_unit(unit.kelvin))
    rms = float(np.std(energies - np.polyval(np.polyfit(times, energies, 1), times)))
    return float(drift), rms, n_dof


def test_nve_energy_conservation_solvated_ligand(pxylene_water, record_property):
    built = pxylene_water
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG")
    box = built.topology.getPeriodicBoxVectors()
    drift, rms, n_dof = nve_drift(tighten_pme(hybrid.system), built.positions, box)
    record_property("nve_drift_kT_per_ns_per_dof", drift)
    print(f"\nML/MM NVE (velocity Verlet, 0.5 fs, 1 ps, {n_dof} dof): drift {drift:+.5f} kT/ns/dof, "
          f"fluctuation {rms:.3f} kJ/mol")
    assert abs(drift) < DRIFT_BOUND_KT
    assert rms < 1.0


def test_drift_check_detects_inconsistent_forces(pxylene_water, monkeypatch):
    """Negative control for the test above: openmm-ml 1.8's ANI PythonForce returns forces in
    kJ/mol/angstrom where OpenMM expects kJ/mol/nm (10x too small), so its dynamics do not
    conserve energy, and the same drift measurement must say so."""
    import torch
    import torchani
    from openmmml import MLPotential
    from openmm_hybrid.models.ani import load_torchani_ani2x
    built = pxylene_water
    monkeypatch.setattr(torchani.models, "ANI2x", lambda **kw: load_torchani_ani2x().to(torch.float32))
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    reference = tighten_pme(MLPotential("ani2x").createMixedSystem(built.topology, built.system, ligand))
    drift, rms, _ = nve_drift(reference, built.positions, built.topology.getPeriodicBoxVectors(), steps=600)
    print(f"\nopenmm-ml 1.8 ANI NVE: drift {drift:+.5f} kT/ns/dof, fluctuation {rms:.3f} kJ/mol")
    assert abs(drift) > DRIFT_BOUND_KT or rms > 1.0
