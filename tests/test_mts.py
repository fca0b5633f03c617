"""Multiple-time-step ML/MM: the fast/slow split is exact, and the RESPA integrators are what they say.

- The MTS-ready System's energy and forces equal the plain ML/MM System's to round-off
  (PME and no cutoff), its fast groups equal the all-MM System, its slow group holds only
  region-internal terms (zero forces on the environment, invariant to moving the region rigidly,
  forces = -dE/dx), also with ``lambda_interpolate``.
- With one substep, velocity-Verlet RESPA is velocity Verlet (OpenMM's VerletIntegrator, and the
  CustomIntegrator recipe with constraints) and BAOAB-RESPA is single-step BAOAB (OpenMM's
  LangevinMiddleIntegrator, and a BAOAB CustomIntegrator with constraints), compared without noise.
- NVE drift of velocity-Verlet RESPA on p-xylene in water for outer steps of 1, 2 and 4 fs.
"""
import csv
import json

import numpy as np
import openmm
import pytest
from openmm import unit

from helpers import requires_ani, requires_emle
from openmm_hybrid.analysis.energy_conservation import equilibrate, measure_drift, tighten_pme, velocity_verlet
from openmm_hybrid.testing import compute, emle_model_path
from openmm_hybrid.errors import HybridError, SimulationError
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.dynamics.integrators import create_mts_langevin_integrator, create_mts_verlet_integrator
from openmm_hybrid.hybrid.mts import mts_force_groups

pytestmark = requires_ani

LAMBDA = "lambda_interpolate"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small tensors: torch's intra-op threads only compete with OpenMM's and other processes
    (an 18-atom ANI-2x evaluation took 0.1-1 s with two threads on the loaded 2-core machine,
    0.02-0.05 s with one)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _groups(hybrid):
    return set(hybrid.force_groups["fast"]), {hybrid.force_groups["slow"]}


def _plain_and_mts(built, model):
    plain = create_hybrid_system(built.topology, built.system, "resname LIG", model=model)
    mts = create_hybrid_system(built.topology, built.system, "resname LIG", model=model, mts_ready=True)
    return built, plain, mts


@pytest.fixture(scope="module")
def periodic(pxylene_water, ani_double):
    return _plain_and_mts(pxylene_water, ani_double)


@pytest.fixture(scope="module")
def non_periodic(complex_vacuum, ani_double):
    return _plain_and_mts(complex_vacuum, ani_double)


@pytest.fixture(scope="module")
def ligand_vacuum(example_dir, ani_double):
    """p-xylene alone, no cutoff, no constraints (velocity Verlet and leapfrog agree exactly)."""
    from openmm_hybrid.mm import build_system
    built = build_system(ligand=str(example_dir / "p-xylene.sdf"), solvent="vacuum")
    assert built.system.getNumConstraints() == 0
    mts = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double, mts_ready=True)
    return built, mts


@pytest.mark.parametrize("case", ["periodic", "non_periodic"])
def test_mts_ready_energy_and_forces_equal_plain_hybrid(case, request):
    built, plain, mts = request.getfixturevalue(case)
    box = built.topology.getPeriodicBoxVectors() if case == "periodic" else None
    assert mts.force_groups == {"ml": 1, "mm": [0], "fast": [0], "slow": 1}
    meta = mts.metadata()
    assert meta["mts_ready"] is True and "slow group" in meta["mts_scheme"]
    assert plain.metadata()["mts_ready"] is False
    fast, slow = _groups(mts)
    e_plain, f_plain = compute(plain.system, built.positions, "Reference", box)
    e_mts, f_mts = compute(mts.system, built.positions, "Reference", box)
    assert abs(e_plain) > 1e5  # the ML term is in there
    assert e_mts == pytest.approx(e_plain, abs=1e-4)
    assert np.abs(f_mts - f_plain).max() < 1e-6
    # fast groups = the all-MM Hamiltonian, region's own MM terms included
    e_mm, f_mm = compute(built.system, built.positions, "Reference", box)
    e_fast, f_fast = compute(mts.system, built.positions, "Reference", box, groups=fast)
    assert e_fast == pytest.approx(e_mm, abs=1e-4)
    assert np.abs(f_fast - f_mm).max() < 1e-4
    # slow group = the correction, which needs the negated region-internal MM terms to be right
    e_slow, f_slow = compute(mts.system, built.positions, "Reference", box, groups=slow)
    e_ml, _ = compute(plain.system, built.positions, "Reference", box, groups={1})
    assert e_slow == pytest.approx(e_plain - e_mm, abs=1e-4)
    assert abs(e_slow - e_ml) > 1.0  # E_MM,internal(region) is not negligible
    # mechanical embedding: the correction acts inside the region only
    environment = np.setdiff1d(np.arange(built.system.getNumParticles()), mts.ml_atoms)
    assert np.abs(f_slow[environment]).max() == 0.0


def test_slow_group_is_internal_to_the_region(non_periodic):
    """Slow group energy is invariant to a rigid motion of the region alone, its forces rotate
    with it, and they are -dE/dx (finite differences, double precision)."""
    built, _, mts = non_periodic
    slow = {mts.force_groups["slow"]}
    xyz = np.array(built.positions.value_in_unit(unit.nanometer))
    ligand = mts.ml_atoms
    e0, f0 = compute(mts.system, xyz * unit.nanometer, "Reference", groups=slow)
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    moved = xyz.copy()
    centre = xyz[ligand].mean(axis=0)
    moved[ligand] = (xyz[ligand] - centre) @ rotation.T + centre + np.array([0.05, -0.03, 0.02])
    e1, f1 = compute(mts.system, moved * unit.nanometer, "Reference", groups=slow)
    e_total0, _ = compute(mts.system, xyz * unit.nanometer, "Reference")
    e_total1, _ = compute(mts.system, moved * unit.nanometer, "Reference")
    assert abs(e_total1 - e_total0) > 1.0  # the move changes the region-environment energy ...
    assert e1 == pytest.approx(e0, abs=1e-5)  # ... but not the slow group
    assert np.abs(f1[ligand] - f0[ligand] @ rotation.T).max() < 1e-5
    h = 1e-5
    for atom, k in [(ligand[0], 0), (ligand[7], 1), (ligand[15], 2)]:
        energies = []
        for sign in (1, -1):
            shifted = xyz.copy()
            shifted[atom, k] += sign * h
            energies.append(compute(mts.system, shifted * unit.nanometer, "Reference", groups=slow)[0])
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert f0[atom, k] == pytest.approx(fd, abs=0.02 + 1e-4 * abs(fd)), (atom, k)


def _energy_and_derivative(system, positions, box, lam, groups=-1):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    context.setParameter(LAMBDA, lam)
    state = context.getState(getEnergy=True, getForces=True, getParameterDerivatives=True, groups=groups)
    derivative = state.getEnergyParameterDerivatives()[LAMBDA] if groups == -1 else None
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer), derivative)


def test_mts_ready_with_lambda_interpolate(periodic, ani_double):
    """E(lambda) = E_MM + lambda (E_ML - E_MM,internal): same energy, forces and dE/dlambda as the
    plain interpolating System at every lambda; the fast groups stay the MM Hamiltonian."""
    built, _, _ = periodic
    box = built.topology.getPeriodicBoxVectors()
    plain = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double, interpolate=True)
    mts = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double, interpolate=True,
                               mts_ready=True)
    assert not any(f.getName().startswith("MMRegionInterpolation") for f in mts.system.getForces())
    e_mm, f_mm = compute(built.system, built.positions, "Reference", box)
    fast, _ = _groups(mts)
    for lam in (0.0, 0.35, 1.0):
        e_p, f_p, d_p = _energy_and_derivative(plain.system, built.positions, box, lam)
        e_m, f_m, d_m = _energy_and_derivative(mts.system, built.positions, box, lam)
        assert e_m == pytest.approx(e_p, abs=1e-4), lam
        assert np.abs(f_m - f_p).max() < 1e-6, lam
        assert d_m == pytest.approx(d_p, abs=1e-4), lam
        e_fast, f_fast, _ = _energy_and_derivative(mts.system, built.positions, box, lam, groups=fast)
        assert e_fast == pytest.approx(e_mm, abs=1e-4), lam
        assert np.abs(f_fast - f_mm).max() < 1e-4, lam
    assert e_m != pytest.approx(e_mm, abs=1.0)  # lambda = 1 is not the MM end state


@requires_emle
def test_mts_ready_electrostatic_embedding(periodic, ani_double):
    """Electrostatic embedding (mechanical System + the EMLEEmbedding correction force) splits
    as it is: the EMLE force joins the slow group, the fast groups are still the MM Hamiltonian,
    and energy, forces and dE/dlambda equal the plain electrostatic System's."""
    from openmm_hybrid.models.emle import EMLEModel
    built, _, _ = periodic
    box = built.topology.getPeriodicBoxVectors()
    emle = EMLEModel(emle_model_path(), precision="double")
    options = dict(embedding="electrostatic", emle_model=emle, embedding_cutoff=0.6, model=ani_double,
                   interpolate=True)
    plain = create_hybrid_system(built.topology, built.system, "resname LIG", **options)
    mts = create_hybrid_system(built.topology, built.system, "resname LIG", mts_ready=True, **options)
    assert mts.force_groups["emle"] == mts.force_groups["slow"] == 1
    names = {f.getName(): f.getForceGroup() for f in mts.system.getForces()}
    assert names["EMLEEmbedding"] == names["MLPotential"] == 1
    e_mm, f_mm = compute(built.system, built.positions, "Reference", box)
    e_mech, _ = compute(periodic[1].system, built.positions, "Reference", box)
    for lam in (0.35, 1.0):
        e_p, f_p, d_p = _energy_and_derivative(plain.system, built.positions, box, lam)
        e_m, f_m, d_m = _energy_and_derivative(mts.system, built.positions, box, lam)
        assert e_m == pytest.approx(e_p, abs=1e-4), lam
        assert np.abs(f_m - f_p).max() < 1e-6, lam
        assert d_m == pytest.approx(d_p, abs=1e-4), lam
        e_fast, f_fast, _ = _energy_and_derivative(mts.system, built.positions, box, lam, groups={0})
        assert e_fast == pytest.approx(e_mm, abs=1e-4), lam
        assert np.abs(f_fast - f_mm).max() < 1e-4, lam
    assert abs(e_m - e_mech) > 1.0  # the EMLE correction is really there (lambda = 1)


def test_mts_ready_system_xml_round_trip(periodic, tmp_path):
    from openmm_hybrid.forces.serialization import load_system, save_system
    built, _, mts = periodic
    box = built.topology.getPeriodicBoxVectors()
    save_system(mts.system, tmp_path / "system.xml")
    reloaded = load_system(tmp_path / "system.xml")
    for groups in (-1, {0}, {1}):
        e0, _ = compute(mts.system, built.positions, "Reference", box, groups=groups)
        e1, _ = compute(reloaded, built.positions, "Reference", box, groups=groups)
        assert e1 == pytest.approx(e0, abs=1e-6)


# ---- integrators with one substep ------------------------------------------------------------------------

def _run(system, integrator, positions, velocities, steps, box=None):
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    context.setVelocities(velocities)
    integrator.step(steps)
    state = context.getState(getPositions=True, getVelocities=True)
    return (state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
            state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond))


def _initial_velocities(system, temperature=300, seed=5):
    masses = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())])
    sigma = np.sqrt(unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin) * temperature
                    / masses)
    return np.random.default_rng(seed).normal(size=(len(masses), 3)) * sigma[:, None]


def test_respa_with_one_substep_is_the_single_step_integrator(ligand_vacuum):
    """Unconstrained, one substep: velocity-Verlet RESPA positions = OpenMM's leapfrog
    VerletIntegrator, and BAOAB-RESPA at T = 0 (friction, no noise) = OpenMM's
    LangevinMiddleIntegrator, both started half a kick back, v(-dt/2) = v(0) - dt/2 F(0)/m."""
    built, mts = ligand_vacuum
    dt, steps = 0.001, 25  # ps
    v0 = _initial_velocities(mts.system)
    _, forces = compute(mts.system, built.positions, "Reference")
    masses = np.array([mts.system.getParticleMass(i).value_in_unit(unit.dalton)
                       for i in range(mts.system.getNumParticles())])
    v_half_back = v0 - 0.5 * dt * forces / masses[:, None]
    x_respa, v_respa = _run(mts.system, create_mts_verlet_integrator(dt * unit.picosecond, 1, mts.force_groups,
                                                                     system=mts.system),
                            built.positions, v0, steps)
    x_leap, v_leap = _run(mts.system, openmm.VerletIntegrator(dt), built.positions, v_half_back, steps)
    displacement = np.abs(x_respa - np.array(built.positions.value_in_unit(unit.nanometer))).max()
    assert displacement > 1e-3  # the molecule moved
    assert np.abs(x_respa - x_leap).max() < 1e-9
    # leapfrog velocities lag half a step: v_leap = v(t - dt/2)
    _, forces_end = compute(mts.system, x_respa * unit.nanometer, "Reference")
    assert np.abs(v_leap + 0.5 * dt * forces_end / masses[:, None] - v_respa).max() < 1e-6

    friction = 20.0  # 1/ps, strong enough to matter in 25 fs
    x_baoab, _ = _run(mts.system, create_mts_langevin_integrator(dt * unit.picosecond, 1, mts.force_groups, 0.0,
                                                                 friction, system=mts.system),
                      built.positions, v0, steps)
    x_middle, _ = _run(mts.system, openmm.LangevinMiddleIntegrator(0.0, friction, dt), built.positions,
                       v_half_back, steps)
    assert np.abs(x_baoab - x_middle).max() < 1e-9
    assert np.abs(x_baoab - x_respa).max() > 1e-5  # the friction acted


def test_respa_with_one_substep_matches_single_step_with_constraints(periodic):
    """Rigid water (SETTLE), one substep: velocity-Verlet RESPA = the single-step velocity-Verlet
    CustomIntegrator, and BAOAB-RESPA = single-step BAOAB, compared without noise (T = 0): on
    OpenMM's Reference/CPU platforms the Gaussian stream of a CustomIntegrator depends on how many
    force evaluations a step makes (measured: same seed, different numbers once the kick is split
    into two force groups), so with noise the trajectories cannot be compared number by number.
    The noise amplitude is checked through the integrator's variables instead."""
    built, _, mts = periodic
    box = built.topology.getPeriodicBoxVectors()
    system = mts.system
    assert system.getNumConstraints() > 0
    dt, steps = 1.0 * unit.femtosecond, 8
    v0 = _initial_velocities(system)
    # constrained starting velocities
    start = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    start.setPeriodicBoxVectors(*box)
    start.setPositions(built.positions)
    start.setVelocities(v0)
    start.applyVelocityConstraints(1e-10)
    v0 = start.getState(getVelocities=True).getVelocities(asNumpy=True)
    del start

    x_ref, v_ref = _run(system, velocity_verlet(dt), built.positions, v0, steps, box)
    respa = create_mts_verlet_integrator(dt, 1, mts.force_groups, system=system, constraint_tolerance=1e-8)
    x_mts, v_mts = _run(system, respa, built.positions, v0, steps, box)
    assert np.abs(x_mts - x_ref).max() < 1e-7
    assert np.abs(v_mts - v_ref).max() < 1e-4

    friction = 20.0 / unit.picosecond
    a = np.exp(-friction.value_in_unit(unit.picosecond ** -1) * dt.value_in_unit(unit.picosecond))
    baoab = openmm.CustomIntegrator(dt)
    baoab.addGlobalVariable("a", a)
    baoab.addPerDofVariable("x1", 0)
    baoab.addUpdateContextState()
    baoab.addComputePerDof("v", "v+0.5*dt*f/m")
    baoab.addComputePerDof("x", "x+0.5*dt*v")
    baoab.addComputePerDof("v", "a*v")
    baoab.addComputePerDof("x", "x+0.5*dt*v")
    baoab.addComputePerDof("x1", "x")
    baoab.addConstrainPositions()
    baoab.addComputePerDof("v", "v+(x-x1)/dt")
    baoab.addConstrainVelocities()
    baoab.addComputePerDof("v", "v+0.5*dt*f/m")
    baoab.addConstrainVelocities()
    baoab.setConstraintTolerance(1e-8)
    x_ref, v_ref = _run(system, baoab, built.positions, v0, steps, box)
    langevin = create_mts_langevin_integrator(dt, 1, mts.force_groups, 0.0, friction, system=system,
                                              constraint_tolerance=1e-8)
    x_mts, v_mts = _run(system, langevin, built.positions, v0, steps, box)
    assert np.abs(x_mts - x_ref).max() < 1e-7
    assert np.abs(v_mts - v_ref).max() < 1e-4
    # noise: the O step every inner step h = dt/n: a = exp(-gamma h), b = sqrt(1 - a^2), kT = R T
    for n in (1, 4):
        integrator = create_mts_langevin_integrator(4.0, n, mts.force_groups, 300.0, 2.0)
        a_n = np.exp(-2.0 * 0.004 / n)
        assert integrator.getGlobalVariableByName("a") == pytest.approx(a_n, rel=1e-12)
        assert integrator.getGlobalVariableByName("b") == pytest.approx(np.sqrt(1 - a_n ** 2), rel=1e-12)
        assert integrator.getGlobalVariableByName("kT") == pytest.approx(
            300.0 * unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin), rel=1e-12)


# ---- refusals ---------------------------------------------------------------------------------------------

def test_mts_refusals(ligand_vacuum):
    from openmm_hybrid.mm import build_system
    built = build_system(ligand="CCO", solvent="vacuum", constrain_ligand=True)
    with pytest.raises(HybridError, match=r"constrains 6 bond\(s\) inside the ML region.*fast \(inner\) force"):
        create_hybrid_system(built.topology, built.system, "resname LIG", mts_ready=True)
    with pytest.raises(HybridError, match="not embedded for multiple-time-step integration.*--mts-ready"):
        mts_force_groups({"force_groups": {"ml": 1, "mm": [0]}, "mts_ready": False})
    assert mts_force_groups({"force_groups": {"ml": 1, "mm": [0], "fast": [0], "slow": 1}, "mts_ready": True}) \
        == {"fast": [0], "slow": 1}
    _, mts = ligand_vacuum
    groups = mts.force_groups
    with pytest.raises(HybridError, match="substeps must be at least 1"):
        create_mts_verlet_integrator(2.0, 0, groups)
    with pytest.raises(HybridError, match="cannot be both fast and slow"):
        create_mts_verlet_integrator(2.0, 2, {"fast": [0, 1], "slow": 1})
    with pytest.raises(HybridError, match="the ML force 'MLPotential' is in group 1, not in the slow group 2"):
        create_mts_langevin_integrator(2.0, 2, {"fast": [0, 1], "slow": 2}, system=mts.system)
    with pytest.raises(HybridError, match=r"is in group 0, which is neither fast \(\[2\]\) nor slow \(1\)"):
        create_mts_verlet_integrator(2.0, 2, {"fast": [2], "slow": 1}, system=mts.system)


# ---- energy conservation ----------------------------------------------------------------------------------

# |drift| bounds in kT/ns/dof for 0.5 ps of velocity-Verlet RESPA (PME tolerance 1e-5), with the
# values measured on this machine: single-step velocity Verlet at 0.5 fs ~0.03 (test_nve.py);
# outer 1 fs x 2: -0.03 and +0.05, outer 2 fs x 4: +0.03 and +0.08 (two runs; ligand X-H bonds
# flexible, no HMR).  An outer step of 4 fs needs hydrogen mass repartitioning: without it the
# slow correction (ANI-2x minus GAFF2 inside the ligand, including the difference of their X-H
# stretch forces) resonates with the X-H vibrations and NVE blows up within 0.5 ps (outer 4 fs x 8
# at 0.5 fs); with H at 3 amu, outer 4 fs x 4 drifts +0.5 and +1.7 (two runs: at the edge of
# stability, hence the loose bound, which still catches a wrong splitting) and 8 fs blows up.
# The CPU platform with several threads sums forces in no fixed order, and Modeller places ions
# at random, so every run used to follow a different trajectory; at the edge of stability (4 fs)
# one run in four or five blew up within 0.5 ps (a CI run did).  These runs use a fixed ion
# placement and one thread with deterministic forces: the same trajectory every time on the same
# hardware (measured: outer 1 fs x 2 -0.074, 2 fs x 4 -0.033, 4 fs x 4 with HMR +0.18 kT/ns/dof),
# so the test checks the splitting, not the luck of the draw.  On other hardware (other SIMD
# paths in OpenMM and MKL) the 4 fs trajectory differs and may still hit the resonance: a blow-up
# there is reported as an expected failure naming that limit (docs/mts.md), while
# a run that survives must meet the drift bound, and the 1 and 2 fs cases must always hold.
REPRODUCIBLE_CPU = {"Threads": "1", "DeterministicForces": "true"}
EDGE_OF_STABILITY = {"outer 4 fs x 4, HMR 3 amu"}
NVE_CASES = {"outer 1 fs x 2": (None, 1.0, 2, 0.2, 1.0),
             "outer 2 fs x 4": (None, 2.0, 4, 0.2, 1.0),
             "outer 4 fs x 4, HMR 3 amu": (3.0, 4.0, 4, 3.0, 3.0)}


@pytest.fixture(scope="module")
def equilibrated_mts(example_dir, ani_single):
    """Equilibrated MTS-ready p-xylene in water, without and with hydrogen mass repartitioning."""
    from openmm_hybrid.mm import build_system
    cases = {}
    import random
    for hmr in (None, 3.0):
        random.seed(2024)  # Modeller.addSolvent replaces randomly chosen waters by ions: the same box every run
        built = build_system(ligand=str(example_dir / "p-xylene.sdf"), solvent="explicit", padding=1.2,
                             hydrogen_mass=hmr)
        mts = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_single, mts_ready=True)
        system = tighten_pme(mts.system)
        box = built.topology.getPeriodicBoxVectors()
        cases[hmr] = (system, mts.force_groups, equilibrate(system, built.positions, box, minimize_system=built.system,
                                                            properties=REPRODUCIBLE_CPU))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("case", list(NVE_CASES))
def test_nve_drift_verlet_respa(equilibrated_mts, case, record_property):
    hmr, outer_fs, substeps, drift_bound, rms_bound = NVE_CASES[case]
    system, groups, state = equilibrated_mts[hmr]
    integrator = create_mts_verlet_integrator(outer_fs, substeps, groups, system=system, constraint_tolerance=1e-8)
    steps = int(round(500 / outer_fs))  # 0.5 ps
    try:
        result = measure_drift(system, state, integrator, steps=steps, report=max(1, steps // 100),
                               properties=REPRODUCIBLE_CPU)
    except (openmm.OpenMMException, SimulationError) as exc:
        if case in EDGE_OF_STABILITY and ("NaN" in str(exc) or "blew up" in str(exc)):
            pytest.xfail(f"{case} blew up: the outer step is at the X-H resonance limit of multiple time "
                         f"stepping (known, see docs/mts.md)")
        raise
    drift, rms, n_dof = result.drift, result.fluctuation, result.n_dof
    record_property("nve_drift_kT_per_ns_per_dof", drift)
    print(f"\nRESPA NVE {case} (inner {outer_fs / substeps} fs), 0.5 ps, {n_dof} dof: "
          f"drift {drift:+.4f} kT/ns/dof, fluctuation {rms:.3f} kJ/mol")
    assert abs(drift) < drift_bound
    assert rms < rms_bound


# ---- command line -----------------------------------------------------------------------------------------

def test_cli_embed_mts_ready_and_run_mts(tmp_path, pxylene_water, capsys):
    from openmm_hybrid.cli import main
    build, embed, plain, run = (tmp_path / name for name in ("build", "embed", "plain", "run"))
    pxylene_water.save(build)  # what 'openmm-hybrid build' writes
    assert main(["--quiet", "embed", "--input", str(build), "--mts-ready", "--out", str(embed)]) == 0
    info = json.loads((embed / "embed.json").read_text())
    assert info["mts_ready"] is True
    assert info["force_groups"] == {"ml": 1, "mm": [0], "fast": [0], "slow": 1}
    assert main(["--quiet", "run", "--input", str(embed), "--mts", "4", "--timestep", "2", "--steps", "6",
                 "--report-interval", "3", "--minimize-iterations", "10", "--warmup-steps", "6", "--platform", "CPU",
                 "--out", str(run)]) == 0
    summary = json.loads((run / "run.json").read_text())
    assert summary["integrator"] == "RESPAIntegrator (BAOAB-RESPA Langevin)"
    assert summary["scheme"] == "multiple time step (RESPA)"
    assert (summary["outer_timestep_fs"], summary["inner_timestep_fs"], summary["substeps"]) == (2.0, 0.5, 4)
    assert summary["force_groups"] == {"fast": [0], "slow": 1}
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [0, 3, 6]
    assert [float(r["time_ps"]) for r in rows] == pytest.approx([0.0, 0.006, 0.012])
    assert all(np.isfinite(float(r["slow_kjmol"])) for r in rows)  # E_ML - E_MM,internal(region)

    assert main(["--quiet", "embed", "--input", str(build), "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main(["--quiet", "run", "--input", str(plain), "--mts", "2", "--steps", "2", "--out",
                 str(tmp_path / "refused")]) == 2
    assert "embed it with 'openmm-hybrid embed --mts-ready'" in capsys.readouterr().err
