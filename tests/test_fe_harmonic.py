"""End-state workflows on harmonic wells with an exact answer, resume, refusals, CLI.

The MM end state is a harmonic well of stiffness k0 for each particle, the "ML" end state a
TorchScript module (made into a force by ``create_module_force`` and scaled by
``lambda_interpolate``) with stiffness k1, so

    F(1) - F(0) = -kT ln(Z1/Z0) = (3n/2) kT ln(k1/k0)

exactly.  LangevinMiddleIntegrator (BAOAB) samples a harmonic potential's configurations
exactly at any stable time step, so the only error is statistical.
"""
import copy
import json
import math
from typing import Optional

import numpy as np
import openmm
import openmm.app as app
import pytest
import torch
from openmm import unit

from openmm_hybrid.errors import CheckpointError, FreeEnergyError, InsufficientOverlapError, RunInterrupted
from openmm_hybrid.freeenergy import run_endstate
from openmm_hybrid.freeenergy.checkpoint import SegmentBudget
from openmm_hybrid.freeenergy.sampler import ChainState, StateSampler, thermal_energy
from openmm_hybrid.freeenergy.settings import (EndstateSettings, MBARSettings, NEQSettings, SimulationSettings)
from openmm_hybrid.forces import ML_FORCE_NAME, create_module_force

N, K0, K1, MASS, T = 4, 400.0, 900.0, 12.0, 300.0
EXACT_KT = 1.5 * N * math.log(K1 / K0)


class HarmonicWell(torch.nn.Module):
    """0.5 k |x|^2 summed over particles, kJ/mol, times the scale parameter."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if scale is None:
            scale = boxvectors  # non-periodic System: the parameter arrives in the box slot
        energy = 0.5 * self.k * (positions.to(torch.float64) ** 2).sum()
        if scale is not None:
            energy = energy * scale.to(torch.float64).reshape(())
        return energy


def harmonic_system(mm_form="linear", with_lambda=True, k1=K1):
    """MM well k0 scaled by (1 - lambda) ("linear", with dE/dlambda), by (1 - lambda^2)
    ("quadratic") or by (1 - lambda) without a derivative ("no-derivative"); ML well k1 times lambda."""
    system = openmm.System()
    for _ in range(N):
        system.addParticle(MASS)
    if not with_lambda:
        force = openmm.CustomExternalForce(f"0.5*{K0}*(x^2+y^2+z^2)")
        for i in range(N):
            force.addParticle(i, [])
        system.addForce(force)
        return system
    factor = {"linear": "(1-lambda_interpolate)", "quadratic": "(1-lambda_interpolate^2)",
              "no-derivative": "(1-lambda_interpolate)"}[mm_form]
    if mm_form == "no-derivative":
        force = openmm.CustomExternalForce(f"{factor}*0.5*{K0}*(x^2+y^2+z^2)")
        for i in range(N):
            force.addParticle(i, [])
    else:
        force = openmm.CustomCompoundBondForce(1, f"{factor}*0.5*{K0}*(x1^2+y1^2+z1^2)")
        for i in range(N):
            force.addBond([i], [])
    force.addGlobalParameter("lambda_interpolate", 1.0)
    if mm_form != "no-derivative":
        force.addEnergyParameterDerivative("lambda_interpolate")
    system.addForce(force)
    system.addForce(create_module_force(torch.jit.script(HarmonicWell(k1)), periodic=False, force_group=1,
                                        name=ML_FORCE_NAME, scale_parameter="lambda_interpolate"))
    return system


START = np.array([[0.02 * i, -0.01 * i, 0.0] for i in range(N)])


def settings(method, **overrides):
    s = EndstateSettings(
        method=method, seed=20240611,
        simulation=SimulationSettings(temperature_K=T, timestep_fs=10.0, friction_per_ps=10.0, platform="CPU",
                                      minimize_iterations=None),
        neq=NEQSettings(n_switches=100, switch_steps=20, equilibration_steps=200, steps_between_samples=25,
                        samples_per_segment=50, switches_per_segment=25),
        mbar=MBARSettings(lambdas=[0.0, 0.25, 0.5, 0.75, 1.0], equilibration_steps=200, n_samples=80,
                          steps_between_samples=25, samples_per_segment=40))
    for key, value in overrides.items():
        section, name = key.split("__")
        setattr(getattr(s, section), name, value)
    return s


def assert_exact(result):
    estimate = result["estimate"]
    assert estimate["kT_error"] < 0.2                        # precise enough for the test to mean something
    assert abs(estimate["kT"] - EXACT_KT) < 4 * estimate["kT_error"], (estimate, EXACT_KT)
    kT_kcal = thermal_energy(T) / 4.184
    assert estimate["kcal_per_mol"] == pytest.approx(estimate["kT"] * kT_kcal, rel=1e-9)


def test_neq_bar_recovers_exact_free_energy(tmp_path):
    result = run_endstate(harmonic_system("linear"), START, tmp_path, settings("neq"))
    assert_exact(result)
    assert "linear in lambda_interpolate (checked)" in result["sampler"]["energy_evaluation"]
    details = result["details"]
    # second law: mean forward work above dF, mean reverse work above -dF
    assert details["mean_work_forward_kT"] > EXACT_KT and details["mean_work_reverse_kT"] > -EXACT_KT
    for key in ("jarzynski_forward", "jarzynski_reverse"):
        assert abs(details[key]["kT"] - EXACT_KT) < 4 * details[key]["kT_error"] + 0.2
    assert len(result["works_kT"]["forward"]) == 100
    assert result["status"] == "ok" and min(details["effective_samples"].values()) >= 20
    for name in ("results.json", "settings.yaml", "work_distributions.png", "convergence.png"):
        assert (tmp_path / name).is_file()


def test_mbar_recovers_exact_free_energy_on_a_nonlinear_path(tmp_path):
    """(1 - lambda^2) MM scaling: not linear, so every window's energy is evaluated explicitly;
    the end states, hence dF, are the same."""
    result = run_endstate(harmonic_system("quadratic"), START, tmp_path, settings("mbar"))
    assert result["sampler"]["energy_evaluation"] == "explicit evaluation at every state"
    assert result["sampler"]["linearity_check"]["linear"] is False
    assert_exact(result)
    assert (tmp_path / "overlap_matrix.png").is_file()
    assert result["details"]["min_neighbour_overlap"] > 0.03
    effective = result["details"]["effective_samples"]                # MBAR's per-state effective samples
    assert list(effective) == ["lambda=0", "lambda=0.25", "lambda=0.5", "lambda=0.75", "lambda=1"]
    assert all(20 <= n <= 5 * 80 for n in effective.values())
    assert result["status"] == "ok" and result["sampling_problems"] == []


def test_linear_interpolation_of_energies_equals_explicit_evaluation():
    simulation = SimulationSettings(temperature_K=T, platform="Reference")
    states = [{"lambda_interpolate": x} for x in (0.0, 0.3, 0.7, 1.0)]
    rng = np.random.default_rng(1)
    linear = StateSampler(harmonic_system("linear"), ["lambda_interpolate"], simulation)
    no_derivative = StateSampler(harmonic_system("no-derivative"), ["lambda_interpolate"], simulation)
    for sampler in (linear, no_derivative):
        sampler.start_segment(ChainState(START), 1, {"lambda_interpolate": 0.0})
    assert linear.check_linearity("lambda_interpolate") is True
    assert no_derivative.check_linearity("lambda_interpolate") is False   # no dE/dlambda: never interpolated
    kT = thermal_energy(T)
    for _ in range(3):
        x = rng.normal(0, 0.1, (N, 3))
        for sampler in (linear, no_derivative):
            sampler.start_segment(ChainState(x), 1, {"lambda_interpolate": 0.3})
        r2 = (x ** 2).sum()
        exact = np.array([((1 - s["lambda_interpolate"]) * 0.5 * K0 * r2 + s["lambda_interpolate"] * 0.5 * K1 * r2)
                          for s in states]) / kT
        current = {"lambda_interpolate": 0.3}
        assert np.allclose(linear.reduced_potentials(states, current), exact, rtol=1e-10, atol=1e-10)
        assert np.allclose(no_derivative.reduced_potentials(states, current), exact, rtol=1e-10, atol=1e-10)
        work = linear.work_increment("lambda_interpolate", 0.3, 0.7)
        assert work == pytest.approx(exact[2] - exact[1], rel=1e-10)


@pytest.mark.parametrize("method, stops", [("neq", (4, 4)), ("mbar", (2, 3))])
def test_interrupted_run_resumes_to_the_identical_result(tmp_path, method, stops):
    small = settings(method, neq__n_switches=6, neq__switch_steps=10, neq__equilibration_steps=20,
                     neq__steps_between_samples=10, neq__samples_per_segment=4, neq__switches_per_segment=4,
                     mbar__lambdas=[0.0, 0.5, 1.0], mbar__n_samples=12, mbar__steps_between_samples=10,
                     mbar__samples_per_segment=5, mbar__equilibration_steps=20)
    small.min_overlap = 0.0
    reference = run_endstate(harmonic_system("linear"), START, tmp_path / "uninterrupted", small)
    out = tmp_path / "interrupted"
    for stop in stops:
        with pytest.raises(RunInterrupted, match="run the same command again"):
            run_endstate(harmonic_system("linear"), START, out, small, budget=SegmentBudget(stop))
    resumed = run_endstate(harmonic_system("linear"), START, out, small)
    assert resumed["resumed"] is True
    assert resumed["estimate"] == reference["estimate"]             # bit for bit
    if method == "neq":
        assert resumed["works_kT"] == reference["works_kT"]
    # a different seed is a different run: refused in the same folder
    other = copy.deepcopy(small)
    other.seed = 99
    with pytest.raises(CheckpointError, match="different run.*settings.seed"):
        run_endstate(harmonic_system("linear"), START, out, other)


def test_system_without_lambda_interpolate_is_refused(tmp_path):
    with pytest.raises(FreeEnergyError, match="no global parameter 'lambda_interpolate'.*embed --interpolate"):
        run_endstate(harmonic_system(with_lambda=False), START, tmp_path, settings("neq"))


def test_windows_without_overlap_are_reported(tmp_path):
    s = settings("mbar", mbar__lambdas=[0.0, 1.0], mbar__n_samples=20, mbar__samples_per_segment=20)
    # end states far apart: the ML well 100 times stiffer than the MM one
    stiff = openmm.System()
    for _ in range(N):
        stiff.addParticle(MASS)
    mm = openmm.CustomCompoundBondForce(1, f"(1-lambda_interpolate)*0.5*{K0}*(x1^2+y1^2+z1^2)")
    for i in range(N):
        mm.addBond([i], [])
    mm.addGlobalParameter("lambda_interpolate", 1.0)
    mm.addEnergyParameterDerivative("lambda_interpolate")
    stiff.addForce(mm)
    stiff.addForce(create_module_force(torch.jit.script(HarmonicWell(100 * K0)), force_group=1,
                                       name=ML_FORCE_NAME, scale_parameter="lambda_interpolate"))
    with pytest.raises(InsufficientOverlapError, match="smallest off-diagonal.*add windows") as info:
        run_endstate(stiff, START, tmp_path, s)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "insufficient_overlap" and "add windows" in results["error"]
    assert results["details"]["min_neighbour_overlap"] < 0.03
    assert "lambda=0 and lambda=1" in str(info.value)


def _save_as_embed_dir(system, directory, with_lambda=True):
    """Write ``system`` as an ``embed`` output folder (system.xml, topology.pdb, state.xml, embed.json)."""
    from openmm_hybrid.mm import BuiltSystem
    topology = app.Topology()
    residue = topology.addResidue("LIG", topology.addChain())
    for i in range(N):
        topology.addAtom(f"C{i}", app.element.carbon, residue)
    info = {"ml_atoms": list(range(N)), "model": "harmonic-test", "embedding": "test", "interpolate": with_lambda,
            "region_net_charge": 0}
    BuiltSystem(topology, system, START * unit.nanometer, info).save(directory, info_name="embed.json")


def test_cli_endstate_report_and_refusal(tmp_path, capsys):
    from openmm_hybrid.cli import main
    embed = tmp_path / "embed"
    _save_as_embed_dir(harmonic_system("linear"), embed)
    settings_file = tmp_path / "fe.yaml"
    settings_file.write_text(
        "simulation: {temperature_K: 300, timestep_fs: 10, friction_per_ps: 10, minimize_iterations: null}\n"
        "neq: {n_switches: 8, switch_steps: 10, equilibration_steps: 20, steps_between_samples: 10}\n"
        "min_overlap: 0.0\n")
    out = tmp_path / "fe-out"
    args = ["--quiet", "fe", "endstate", "--input", str(embed), "--out", str(out), "--settings", str(settings_file),
            "--seed", "5", "--platform", "CPU", "--set", "neq.samples_per_segment=4"]
    with pytest.raises(SystemExit) as stop:
        main(args + ["--stop-after-segments", "3"])
    assert stop.value.code == 3
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "dF(MM -> ML/MM) =" in printed and "kcal/mol" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 5 and results["settings"]["neq"]["samples_per_segment"] == 4
    assert results["input"]["model"] == "harmonic-test"
    assert main(["fe", "report", str(out), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert "| endstate | dF MM -> ML/MM | NEQ |" in table
    assert f"{results['estimate']['kcal_per_mol']:.3f}" in table

    # binding correction from two folders: the "complex" has a stiffer ML well than the "solvent"
    stiff = tmp_path / "embed-stiff"
    _save_as_embed_dir(harmonic_system("linear", k1=1.5 * K1), stiff)
    binding = tmp_path / "binding"
    assert main(["--quiet", "fe", "binding-correction", "--complex", str(stiff), "--solvent", str(embed),
                 "--out", str(binding), "--settings", str(settings_file), "--seed", "9", "--platform", "CPU",
                 "--mm-dg", "-5.0", "--mm-dg-error", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "ddG_corr =" in printed and "dG_bind(ML/MM) =" in printed
    result = json.loads((binding / "results.json").read_text())
    phases = {p: json.loads((binding / p / "results.json").read_text())["estimate"] for p in ("complex", "solvent")}
    assert result["estimate"]["kT"] == pytest.approx(phases["complex"]["kT"] - phases["solvent"]["kT"], abs=1e-12)
    assert result["ml_mm_binding"]["kcal_per_mol"] == pytest.approx(-5.0 + result["estimate"]["kcal_per_mol"])
    assert result["ml_mm_binding"]["kcal_per_mol_error"] == pytest.approx(
        math.hypot(0.2, result["estimate"]["kcal_per_mol_error"]))
    exact = 1.5 * N * math.log(1.5)                             # (3n/2) ln(k1'/k1)
    assert abs(result["estimate"]["kT"] - exact) < 4 * result["estimate"]["kT_error"] + 0.3
    assert phases["complex"]["kT"] != phases["solvent"]["kT"]

    plain = tmp_path / "plain"
    _save_as_embed_dir(harmonic_system(with_lambda=False), plain, with_lambda=False)
    assert main(["fe", "endstate", "--input", str(plain), "--out", str(tmp_path / "x")]) == 2
    assert "embed --interpolate" in capsys.readouterr().err


def test_npt_run_with_barostat_resumes_to_the_identical_result(tmp_path):
    """A periodic water box with a lambda-dependent restraint: the Monte Carlo barostat's
    random moves are reproduced exactly too (its seed is set per segment)."""
    from openmm_hybrid.freeenergy.sampler import ChainState as State
    forcefield = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, boxSize=openmm.Vec3(1.6, 1.6, 1.6) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    restraint = openmm.CustomCompoundBondForce(1, "(1-lambda_interpolate)*500*(x1^2+y1^2+z1^2)")
    restraint.addGlobalParameter("lambda_interpolate", 1.0)
    restraint.addBond([0], [])
    system.addForce(restraint)
    s = settings("mbar", mbar__lambdas=[0.0, 0.5, 1.0], mbar__n_samples=6, mbar__steps_between_samples=10,
                 mbar__samples_per_segment=3, mbar__equilibration_steps=20)
    s.simulation.timestep_fs = 2.0
    s.simulation.barostat_interval = 5
    s.min_overlap = 0.0
    positions = np.array(modeller.positions.value_in_unit(unit.nanometer))
    box = modeller.topology.getPeriodicBoxVectors()
    reference = run_endstate(system, positions, tmp_path / "uninterrupted", s, box_vectors=box)
    assert reference["sampler"]["ensemble"].startswith("NPT")
    final = State.load(sorted((tmp_path / "uninterrupted" / "checkpoint").glob("window02.state.*.npz"))[-1])
    assert abs(np.linalg.det(final.box) - 1.6 ** 3) > 1e-4          # the volume moved
    out = tmp_path / "interrupted"
    for stop in (2, 3):
        with pytest.raises(RunInterrupted):
            run_endstate(system, positions, out, s, box_vectors=box, budget=SegmentBudget(stop))
    resumed = run_endstate(system, positions, out, s, box_vectors=box)
    assert resumed["estimate"] == reference["estimate"]
    assert resumed["details"]["delta_f_kT"] == reference["details"]["delta_f_kT"]


def test_npt_box_without_room_to_shrink_is_refused():
    forcefield = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, boxSize=openmm.Vec3(1.6, 1.6, 1.6) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=0.79 * unit.nanometer)
    restraint = openmm.CustomCompoundBondForce(1, "lambda_interpolate*(x1^2+y1^2+z1^2)")
    restraint.addGlobalParameter("lambda_interpolate", 1.0)
    restraint.addBond([0], [])
    system.addForce(restraint)
    with pytest.raises(FreeEnergyError, match="no room to shrink.*pressure_bar: null"):
        StateSampler(system, ["lambda_interpolate"], SimulationSettings(platform="Reference"))
    StateSampler(system, ["lambda_interpolate"], SimulationSettings(platform="Reference", pressure_bar=None))
