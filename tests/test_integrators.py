"""RESPA integrators on small analytic systems (no ML model needed): same trajectories as
OpenMM's MTSIntegrator / MTSLangevinIntegrator, n fast + 1 slow force evaluation per outer step,
and the stored fast forces are recomputed whenever what they depend on changes."""
import numpy as np
import openmm
import pytest
import torch

from openmm_hybrid import forces as ml_force
from openmm_hybrid.forces import module_force
from openmm_hybrid.testing import EvaluationCounter
from openmm_hybrid.dynamics.integrators import (create_mts_langevin_integrator, create_mts_verlet_integrator,
                                       invalidate_fast_forces)

GROUPS = {"fast": [0], "slow": 1}


def toy_system(fast_parameter=False):
    """Six particles: stiff bonds (fast), soft anharmonic external field (slow), one constraint."""
    system = openmm.System()
    for mass in (1.0, 12.0, 1.0, 16.0, 14.0, 1.0):
        system.addParticle(mass)
    bonds = openmm.CustomBondForce("kb*(r-0.12)^2" if fast_parameter else "2e4*(r-0.12)^2")
    if fast_parameter:
        bonds.addGlobalParameter("kb", 2e4)
    for a, b in ((0, 1), (1, 2), (1, 3), (3, 4), (4, 5)):
        bonds.addBond(a, b)
    bonds.setForceGroup(0)
    system.addForce(bonds)
    field = openmm.CustomExternalForce("50*(x^2+y^2+z^2)+30*x*y*z+20*(x^4+y^4)")
    for i in range(6):
        field.addParticle(i)
    field.setForceGroup(1)
    system.addForce(field)
    system.addConstraint(3, 4, 0.14)
    return system


def start(seed=0):
    rng = np.random.default_rng(seed)
    x = np.array([[0, 0, 0], [0.12, 0, 0], [0.16, 0.11, 0], [0.24, -0.08, 0.02], [0.37, -0.12, 0.05],
                  [0.45, -0.05, 0.1]]) + rng.normal(scale=0.005, size=(6, 3))
    v = rng.normal(scale=0.5, size=(6, 3))
    return x, v


def run(system, integrator, x, v, steps):
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(x)
    context.setVelocities(v)
    context.applyConstraints(1e-12)
    context.applyVelocityConstraints(1e-12)
    integrator.step(steps)
    state = context.getState(getPositions=True, getVelocities=True)
    return state.getPositions(asNumpy=True)._value, state.getVelocities(asNumpy=True)._value


@pytest.mark.parametrize("substeps", [1, 2, 4])
def test_same_trajectories_as_openmm_mts_integrators(substeps):
    system = toy_system()
    x, v = start()
    dt = 0.002  # ps, outer
    ours = create_mts_verlet_integrator(dt * 1000, substeps, GROUPS, system=system, constraint_tolerance=1e-10)
    theirs = openmm.MTSIntegrator(dt, [(1, 1), (0, substeps)])
    theirs.setConstraintTolerance(1e-10)
    x1, v1 = run(system, ours, x, v, 100)
    x2, v2 = run(system, theirs, x, v, 100)
    assert np.abs(x1 - np.asarray(x)).max() > 0.01  # it moved
    assert np.abs(x1 - x2).max() < 1e-10
    assert np.abs(v1 - v2).max() < 1e-8
    # BAOAB-RESPA: compared with friction and no noise (T = 0)
    ours = create_mts_langevin_integrator(dt * 1000, substeps, GROUPS, 0.0, 50.0, system=system,
                                          constraint_tolerance=1e-10)
    theirs = openmm.MTSLangevinIntegrator(0.0, 50.0, dt, [(1, 1), (0, substeps)])
    theirs.setConstraintTolerance(1e-10)
    x3, v3 = run(system, ours, x, v, 100)
    x4, v4 = run(system, theirs, x, v, 100)
    assert np.abs(x3 - x4).max() < 1e-10
    assert np.abs(v3 - v4).max() < 1e-8
    assert np.abs(x3 - x1).max() > 1e-4  # the friction acted


def test_force_evaluations_per_outer_step(monkeypatch):
    """n fast and 1 slow evaluation per outer step (OpenMM's MTSIntegrator: n + 1 fast)."""
    monkeypatch.setattr(module_force, "MODULE_FORCE_NAMES", module_force.MODULE_FORCE_NAMES | {"Counter"})
    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    for group in (0, 1):  # free flight; each group holds only its counter
        system.addForce(ml_force.create_module_force(torch.jit.script(EvaluationCounter()), force_group=group,
                                                     name="Counter"))

    def counts(integrator, steps):
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(np.zeros((3, 3)))
        context.setVelocities(np.ones((3, 3)))
        integrator.step(1)

        def read(group):  # reading evaluates the counter once more
            return context.getState(getEnergy=True, groups={group}).getPotentialEnergy()._value

        before = [read(0), read(1)]
        integrator.step(steps)
        after = [read(0), read(1)]
        extra = None
        if hasattr(integrator, "substeps"):
            integrator.step(5)
            middle = read(0)
            invalidate_fast_forces(integrator)
            integrator.step(5)
            extra = read(0) - middle - 1 - 5 * integrator.substeps
        return [(a - b - 1) / steps for a, b in zip(after, before)], extra

    for n in (1, 2, 4):
        (fast, slow), extra = counts(create_mts_verlet_integrator(2.0, n, GROUPS), 50)
        assert fast == pytest.approx(n, abs=0.03)
        assert slow == pytest.approx(1.0, abs=0.03)  # + 1 for the step() call after a read
        assert extra == 1  # invalidate_fast_forces: one more fast evaluation
        (fast, slow), _ = counts(openmm.MTSIntegrator(0.002, [(1, 1), (0, n)]), 50)
        assert fast == pytest.approx(n + 1, abs=0.03)


def test_stored_fast_forces_follow_changes():
    """New positions (setPositions) or a new value of a fast force's global parameter between
    steps: the trajectory is the one a fresh integrator gives from there."""
    system = toy_system(fast_parameter=True)
    x, v = start()
    x_new, v_new = start(seed=1)
    platform = openmm.Platform.getPlatformByName("Reference")
    for langevin in (False, True):
        def make():
            if langevin:
                return create_mts_langevin_integrator(2.0, 4, GROUPS, 0.0, 20.0, system=system,
                                                      constraint_tolerance=1e-10)
            return create_mts_verlet_integrator(2.0, 4, GROUPS, system=system, constraint_tolerance=1e-10)
        integrator = make()
        context = openmm.Context(system, integrator, platform)
        context.setPositions(x)
        context.setVelocities(v)
        context.applyConstraints(1e-12)
        integrator.step(5)
        context.setPositions(x_new)
        context.setVelocities(v_new)
        context.applyConstraints(1e-12)
        integrator.step(5)
        context.setParameter("kb", 3e4)
        integrator.step(5)
        reused = context.getState(getPositions=True).getPositions(asNumpy=True)._value

        fresh = make()
        context = openmm.Context(system, fresh, platform)
        context.setPositions(x_new)
        context.setVelocities(v_new)
        context.applyConstraints(1e-12)
        fresh.step(5)
        state = context.getState(getPositions=True, getVelocities=True)
        fresh = make()
        context = openmm.Context(system, fresh, platform)
        context.setParameter("kb", 3e4)
        context.setPositions(state.getPositions())
        context.setVelocities(state.getVelocities())
        fresh.step(5)
        expected = context.getState(getPositions=True).getPositions(asNumpy=True)._value
        assert np.abs(reused - expected).max() < 1e-10, langevin
