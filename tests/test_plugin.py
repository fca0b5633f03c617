"""The compiled plugin's TorchModuleForce: agreement with openmm-torch's TorchForce, finite
differences, parameter derivatives, periodic box, XML round trip, deepcopy, CustomCVForce,
platform conversion and refusals."""
import copy
import io
import pickle
import subprocess
import sys
from typing import Optional

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from helpers import REPO, requires_ani
from openmm_hybrid.testing import compute
from openmm_hybrid.forces import plugin
from openmm_hybrid.errors import HybridError, PluginError
from openmm_hybrid.forces import (MODULE_FORCE_NAMES, create_module_force, for_platform, is_ml_force,
                                    to_torch_forces)
from openmm_hybrid.forces.serialization import load_system

PLATFORMS = ["Reference", "CPU"]
KJ_NM = unit.kilojoule_per_mole / unit.nanometer


class GaussianPairs(torch.nn.Module):
    """E = scale * sum_{i<j} eps * exp(-r_ij^2 / s^2) (kJ/mol), minimum image when periodic
    (box vectors in OpenMM's reduced form); the scale arrives in the box slot when not periodic."""

    periodic: bool
    scaled: bool

    def __init__(self, periodic: bool, scaled: bool):
        super().__init__()
        self.periodic = periodic
        self.scaled = scaled

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.scaled and not self.periodic and scale is None:
            scale = boxvectors
            boxvectors = None
        d = positions.unsqueeze(0) - positions.unsqueeze(1)
        if boxvectors is not None and self.periodic:
            d = d - torch.round(d[:, :, 2] / boxvectors[2, 2]).unsqueeze(-1) * boxvectors[2]
            d = d - torch.round(d[:, :, 1] / boxvectors[1, 1]).unsqueeze(-1) * boxvectors[1]
            d = d - torch.round(d[:, :, 0] / boxvectors[0, 0]).unsqueeze(-1) * boxvectors[0]
        r2 = (d ** 2).sum(-1)
        n = positions.shape[0]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        energy = 7.0 * torch.exp(-r2[mask] / 0.09).sum()
        if scale is not None:
            energy = energy * scale
        return energy


class BoxProbe(torch.nn.Module):
    """Energy that reads each box-vector component with a distinct weight."""

    def forward(self, positions: torch.Tensor, boxvectors: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [100.0, 200.0, 300.0]], dtype=torch.float64)
        return (boxvectors * weights).sum() + 0.0 * positions.sum()


def make_system(n=8, box=None):
    system = openmm.System()
    for _ in range(n):
        system.addParticle(12.0)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    return system


def positions(n=8, seed=0, size=1.0):
    return np.random.default_rng(seed).uniform(0.0, size, size=(n, 3))


TRICLINIC = [openmm.Vec3(1.2, 0, 0), openmm.Vec3(0.3, 1.1, 0), openmm.Vec3(-0.2, 0.4, 1.3)] * unit.nanometer


def with_force(system, force):
    system.addForce(force)
    return system


def our_force(module, periodic=False, scale=None, group=0):
    return create_module_force(torch.jit.script(module), periodic=periodic, force_group=group,
                               scale_parameter=scale)


def torch_force(module, periodic=False, scale=None):
    import openmmtorch
    force = openmmtorch.TorchForce(torch.jit.script(module))
    if scale:
        force.addGlobalParameter(scale, 1.0)
        force.addEnergyParameterDerivative(scale)
    force.setUsesPeriodicBoundaryConditions(periodic)
    return force


def derivative(system, xyz, name, value, platform="Reference", box=None):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(xyz)
    context.setParameter(name, value)
    state = context.getState(getEnergy=True, getParameterDerivatives=True)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), state.getEnergyParameterDerivatives()[name]


def test_plugin_is_loaded():
    assert plugin.is_available(), plugin.load_error()
    assert plugin.has_native_kernel("Reference") and plugin.has_native_kernel("CPU")
    assert not any("OpenMMHybrid" in failure for failure in openmm.Platform.getPluginLoadFailures())
    assert plugin.FORCE_TYPE == "TorchModuleForce"


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("periodic", [False, True])
def test_matches_torch_force(platform, periodic):
    """Same module in openmm-torch's TorchForce and in ours: same energy, forces, dE/dlambda."""
    box = TRICLINIC if periodic else None
    xyz = positions(size=1.2) * unit.nanometer
    ours = with_force(make_system(box=box), our_force(GaussianPairs(periodic, True), periodic, "lambda_interpolate"))
    theirs = with_force(make_system(box=box), torch_force(GaussianPairs(periodic, True), periodic, "lambda_interpolate"))
    e1, f1 = compute(ours, xyz, platform, box, {"lambda_interpolate": 0.7})
    e2, f2 = compute(theirs, xyz, platform, box, {"lambda_interpolate": 0.7})
    assert abs(e1) > 1.0 and np.abs(f1).max() > 1.0  # a meaningful comparison
    assert e1 == pytest.approx(e2, rel=1e-12)
    assert np.abs(f1 - f2).max() <= 1e-12 * np.abs(f2).max()
    d1 = derivative(ours, xyz, "lambda_interpolate", 0.7, platform, box)[1]
    d2 = derivative(theirs, xyz, "lambda_interpolate", 0.7, platform, box)[1]
    assert d1 == pytest.approx(d2, rel=1e-12)


@pytest.mark.parametrize("periodic", [False, True])
def test_finite_difference_forces(periodic):
    box = TRICLINIC if periodic else None
    system = with_force(make_system(box=box), our_force(GaussianPairs(periodic, False), periodic))
    xyz = positions(size=1.2, seed=1)
    _, forces = compute(system, xyz * unit.nanometer, "Reference", box)
    h = 1e-5
    for atom, k in [(0, 0), (3, 1), (7, 2)]:
        energies = []
        for sign in (1, -1):
            moved = xyz.copy()
            moved[atom, k] += sign * h
            energies.append(compute(system, moved * unit.nanometer, "Reference", box)[0])
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert forces[atom, k] == pytest.approx(fd, rel=1e-6, abs=1e-6)
    assert np.abs(forces).max() > 1.0


@pytest.mark.parametrize("periodic", [False, True])
def test_energy_parameter_derivative(periodic):
    """dE/dlambda from autograd equals the finite difference in lambda (and E is linear in it)."""
    box = TRICLINIC if periodic else None
    system = with_force(make_system(box=box), our_force(GaussianPairs(periodic, True), periodic, "lambda_interpolate"))
    xyz = positions(size=1.2, seed=2) * unit.nanometer
    h = 1e-4
    e_plus, _ = derivative(system, xyz, "lambda_interpolate", 0.4 + h, box=box)
    e_minus, _ = derivative(system, xyz, "lambda_interpolate", 0.4 - h, box=box)
    e, d = derivative(system, xyz, "lambda_interpolate", 0.4, box=box)
    assert d == pytest.approx((e_plus - e_minus) / (2 * h), rel=1e-8)
    assert e == pytest.approx(0.4 * d, rel=1e-12)
    assert abs(d) > 1.0


def test_derivative_with_forces_and_energy_only():
    """The derivative is the same whether forces are computed in the same evaluation or not."""
    system = with_force(make_system(), our_force(GaussianPairs(False, True), False, "lambda_interpolate"))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions(seed=3) * unit.nanometer)
    with_forces = context.getState(getForces=True, getParameterDerivatives=True).getEnergyParameterDerivatives()
    alone = context.getState(getParameterDerivatives=True).getEnergyParameterDerivatives()
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert with_forces["lambda_interpolate"] == pytest.approx(alone["lambda_interpolate"], rel=1e-14)
    assert alone["lambda_interpolate"] == pytest.approx(energy, rel=1e-12)  # E = 1 * E_unscaled


@pytest.mark.parametrize("platform", PLATFORMS)
def test_periodic_box_is_passed(platform):
    force = create_module_force(torch.jit.script(BoxProbe()), periodic=True)
    system = with_force(make_system(box=TRICLINIC), force)
    box = np.array([v.value_in_unit(unit.nanometer) for v in TRICLINIC])
    weights = np.array([[1, 2, 3], [10, 20, 30], [100, 200, 300]])
    energy, _ = compute(system, positions() * unit.nanometer, platform, TRICLINIC)
    assert energy == pytest.approx((box * weights).sum(), rel=1e-12)
    # a box set on the Context (not the System's default) reaches the module too
    other = [openmm.Vec3(1.5, 0, 0), openmm.Vec3(0.1, 1.4, 0), openmm.Vec3(0.2, -0.3, 1.6)] * unit.nanometer
    energy, _ = compute(system, positions() * unit.nanometer, platform, other)
    assert energy == pytest.approx((np.array([v.value_in_unit(unit.nanometer) for v in other]) * weights).sum(),
                                   rel=1e-12)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_torch_thread_setting(platform, monkeypatch):
    """The kernel limits torch's threads only while the module runs (torch's count is the same
    afterwards), OPENMM_HYBRID_TORCH_THREADS is honoured with the same result, and a bad value
    is refused by name."""
    xyz = positions(size=1.2) * unit.nanometer
    system = with_force(make_system(), our_force(GaussianPairs(False, True)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        e_default, f_default = compute(system, xyz, platform)
        assert torch.get_num_threads() == 2
        for value in ("1", "3"):
            monkeypatch.setenv("OPENMM_HYBRID_TORCH_THREADS", value)
            e, f = compute(system, xyz, platform)
            assert torch.get_num_threads() == 2
            assert e == pytest.approx(e_default, rel=1e-12)
            assert np.abs(f - f_default).max() <= 1e-12 * np.abs(f_default).max()
        monkeypatch.setenv("OPENMM_HYBRID_TORCH_THREADS", "two")
        with pytest.raises(openmm.OpenMMException, match="OPENMM_HYBRID_TORCH_THREADS must be a positive integer"):
            compute(system, xyz, platform)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def _hybrid_like_system():
    """A periodic System with MM forces around one module force with a global parameter."""
    system = make_system(box=TRICLINIC)
    bonds = openmm.HarmonicBondForce()
    bonds.addBond(0, 1, 0.15, 1000.0)
    system.addForce(bonds)
    system.addForce(our_force(GaussianPairs(True, True), True, "lambda_interpolate", group=1))
    external = openmm.CustomExternalForce("0.5*x^2")
    for i in range(system.getNumParticles()):
        external.addParticle(i, [])
    system.addForce(external)
    return system


def test_xml_round_trip_with_plain_xml_serializer():
    system = _hybrid_like_system()
    reloaded = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    xyz = positions(size=1.2) * unit.nanometer
    e0, f0 = compute(system, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.3})
    e1, f1 = compute(reloaded, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.3})
    assert e1 == e0 and np.array_equal(f1, f0)
    force = plugin.as_torch_module_force(reloaded.getForce(1))
    assert isinstance(force, plugin.TorchModuleForce)
    assert type(reloaded.getForce(1)) is openmm.Force and is_ml_force(reloaded.getForce(1))
    assert force.getName() in MODULE_FORCE_NAMES and force.getForceGroup() == 1
    assert force.usesPeriodicBoundaryConditions()
    assert [force.getGlobalParameterName(0), force.getGlobalParameterDefaultValue(0)] == ["lambda_interpolate", 1.0]
    assert force.getEnergyParameterDerivativeName(0) == "lambda_interpolate"
    assert force.getModuleBytes() == plugin.as_torch_module_force(system.getForce(1)).getModuleBytes()


def test_deepcopy_and_pickle():
    system = _hybrid_like_system()
    xyz = positions(size=1.2) * unit.nanometer
    e0, f0 = compute(system, xyz, "Reference", TRICLINIC)
    for clone in (copy.deepcopy(system), pickle.loads(pickle.dumps(system))):
        e1, f1 = compute(clone, xyz, "Reference", TRICLINIC)
        assert e1 == e0 and np.array_equal(f1, f0)
    force = plugin.as_torch_module_force(system.getForce(1))
    for duplicate in (copy.copy(force), copy.deepcopy(force), pickle.loads(pickle.dumps(force))):
        assert type(duplicate) is type(force)
        assert duplicate.getModuleBytes() == force.getModuleBytes()
        assert duplicate.getName() == force.getName() and duplicate.getForceGroup() == 1
        assert duplicate.getNumEnergyParameterDerivatives() == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_inside_custom_cv_force(platform):
    """OpenMM clones a CustomCVForce's variables through XML when the Context is made."""
    xyz = positions(size=1.2) * unit.nanometer
    plain = with_force(make_system(), our_force(GaussianPairs(False, False)))
    cv = openmm.CustomCVForce("k*ml + 1")
    cv.addGlobalParameter("k", 2.5)
    cv.addEnergyParameterDerivative("k")
    cv.addCollectiveVariable("ml", our_force(GaussianPairs(False, False)))
    wrapped = with_force(make_system(), cv)
    assert is_ml_force(cv)
    e0, f0 = compute(plain, xyz, platform)
    e1, f1 = compute(wrapped, xyz, platform)
    assert e1 == pytest.approx(2.5 * e0 + 1, rel=1e-12)
    assert np.allclose(f1, 2.5 * f0, rtol=1e-12, atol=1e-12)
    _, dk = derivative(wrapped, xyz, "k", 2.5, platform)
    assert dk == pytest.approx(e0, rel=1e-12)


def test_works_while_python_holds_the_gil():
    """A Python MinimizationReporter makes OpenMM call the forces with the GIL held; torch's
    Python autograd engine refuses to run then (TorchForce fails), the plugin's kernel does not."""
    system = with_force(make_system(), our_force(GaussianPairs(False, False)))

    class Reporter(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Reporter.calls += 1
            return False

    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions(seed=4, size=0.5) * unit.nanometer)
    e_start = context.getState(getEnergy=True).getPotentialEnergy()
    openmm.LocalEnergyMinimizer.minimize(context, 1.0, 20, Reporter())
    assert Reporter.calls > 0
    assert context.getState(getEnergy=True).getPotentialEnergy() < e_start


def test_legacy_torch_force_files_are_read():
    """system.xml files written with openmm-torch's TorchForce (before the plugin) load as
    TorchModuleForce with the same energy (OpenMM's own reader would crash on them)."""
    system = make_system(box=TRICLINIC)
    legacy = torch_force(GaussianPairs(True, True), True, "lambda_interpolate")
    legacy.setForceGroup(2)
    system.addForce(legacy)
    xml = openmm.XmlSerializer.serialize(system)
    assert 'type="TorchForce"' in xml
    reloaded = load_system(xml)
    force = plugin.as_torch_module_force(reloaded.getForce(0))
    assert force.getForceGroup() == 2 and force.usesPeriodicBoundaryConditions() and is_ml_force(force)
    assert force.getEnergyParameterDerivativeName(0) == "lambda_interpolate"
    xyz = positions(size=1.2) * unit.nanometer
    e0, f0 = compute(system, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.5})
    e1, f1 = compute(reloaded, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.5})
    assert e1 == pytest.approx(e0, rel=1e-12) and np.allclose(f1, f0, rtol=1e-12, atol=1e-12)


def test_conversion_for_other_platforms():
    import openmmtorch
    system = _hybrid_like_system()
    assert for_platform(system, "CPU") is system and for_platform(system, "Reference") is system
    converted = to_torch_forces(system)
    assert [type(f).__name__ for f in converted.getForces()] == ["HarmonicBondForce", "Force", "CustomExternalForce"]
    torch_force_ = converted.getForce(1)
    assert openmmtorch.TorchForce.isinstance(torch_force_) and is_ml_force(torch_force_)
    assert torch_force_.getForceGroup() == 1
    xyz = positions(size=1.2) * unit.nanometer
    e0, f0 = compute(system, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.6})
    e1, f1 = compute(converted, xyz, "CPU", TRICLINIC, {"lambda_interpolate": 0.6})
    assert e1 == pytest.approx(e0, rel=1e-12) and np.allclose(f1, f0, rtol=1e-12, atol=1e-12)
    cv = openmm.CustomCVForce("ml")
    cv.addCollectiveVariable("ml", our_force(GaussianPairs(False, False)))
    with pytest.raises(HybridError, match="CustomCVForce .* holds a TorchModuleForce"):
        to_torch_forces(with_force(make_system(), cv))


def _gpu_like_platforms():
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())
            if not plugin.has_native_kernel(openmm.Platform.getPlatform(i).getName())]


@pytest.mark.skipif(not _gpu_like_platforms(), reason="no platform without a native TorchModuleForce kernel "
                                                      "(CUDA/OpenCL) is installed")
def test_other_platforms_refuse_clearly_and_run_after_conversion():
    name = _gpu_like_platforms()[0]
    system = _hybrid_like_system()
    with pytest.raises(openmm.OpenMMException, match=rf"no kernel for the {name} platform.*for_platform"):
        openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(name))
    xyz = positions(size=1.2) * unit.nanometer
    e0, _ = compute(system, xyz, "CPU", TRICLINIC)
    e1, _ = compute(for_platform(system, name), xyz, name, TRICLINIC)
    assert e1 == pytest.approx(e0, rel=1e-5)


# The refusal on a platform without a native kernel (plugin/tests/TestOtherPlatformRefusal.cpp, a
# stand-in GPU platform) runs with the other C++ tests in tests/test_plugin_ctest.py.


def test_refusals():
    with pytest.raises(TypeError, match="needs a torch.jit.ScriptModule, its bytes"):
        plugin.TorchModuleForce(3.0)
    with pytest.raises(openmm.OpenMMException, match="module is empty"):
        plugin.TorchModuleForce(b"")
    broken = with_force(make_system(), plugin.TorchModuleForce(b"not a zip archive"))
    with pytest.raises(openmm.OpenMMException, match="cannot load its TorchScript module"):
        compute(broken, positions() * unit.nanometer)
    force = our_force(GaussianPairs(False, False))
    force.addEnergyParameterDerivative("missing")
    with pytest.raises(openmm.OpenMMException, match="derivative 'missing' requested for a name that is not"):
        compute(with_force(make_system(), force), positions() * unit.nanometer)

    class PerAtom(torch.nn.Module):
        def forward(self, positions: torch.Tensor) -> torch.Tensor:
            return (positions ** 2).sum(-1)

    with pytest.raises(openmm.OpenMMException, match="returned 8 values; it must return one energy"):
        compute(with_force(make_system(), our_force(PerAtom())), positions() * unit.nanometer)
    with pytest.raises(openmm.OpenMMException, match="global parameter 'a' was added twice"):
        force = plugin.TorchModuleForce(torch.jit.script(GaussianPairs(False, False)))
        force.addGlobalParameter("a", 1.0)
        force.addGlobalParameter("a", 2.0)


def test_missing_build_is_reported(monkeypatch, tmp_path):
    """Without the compiled libraries openmm_hybrid imports, and creating an ML force says how to build."""
    monkeypatch.setattr(plugin, "_state", {"bindings": None, "error": None})
    monkeypatch.setattr(plugin, "API_LIBRARY", tmp_path / "libOpenMMHybrid.so")
    assert plugin.load() is None and not plugin.is_available()
    assert not plugin.is_torch_module_force(openmm.HarmonicBondForce())
    with pytest.raises(PluginError, match=r"not built \(.*libOpenMMHybrid.so is missing\).*build_plugin.py"):
        our_force(GaussianPairs(False, False))


def test_module_bytes_file_and_module_agree(tmp_path):
    module = torch.jit.script(GaussianPairs(False, False))
    path = tmp_path / "module.pt"
    torch.jit.save(module, str(path))
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    assert plugin.TorchModuleForce(path).getModuleBytes() == path.read_bytes()
    assert plugin.TorchModuleForce(buffer.getvalue()).getModuleBytes() == buffer.getvalue()
    xyz = positions()
    reloaded = plugin.TorchModuleForce(path).getModule()
    assert float(reloaded(torch.tensor(xyz))) == pytest.approx(float(module(torch.tensor(xyz))), rel=1e-14)


# The float32 ANI-2x module sums its atomic network energies (~10^3 kJ/mol in all for p-xylene; the
# self energies are added in float64) in an order that depends on torch's thread count, which differs
# between TorchModuleForce (the CPU platform's threads minus one), TorchForce (torch's setting) and
# a fresh process: a few float32 ulps (2^-24 relative) of ~10^3 kJ/mol, ~1e-4 kJ/mol (2e-5 seen).
FLOAT32_NETWORK_ENERGY_TOL = 1e-3  # kJ/mol
FLOAT32_FORCE_RTOL = 1e-5  # of the largest force component


@requires_ani
def test_ani_region_matches_torch_force_and_reloads_in_fresh_process(ani_single, tmp_path):
    """The real ANI-2x region force (p-xylene, float32 model): equal to TorchForce with the same
    module on Reference and CPU within float32 round-off, and a fresh Python process reads the
    saved system.xml with nothing but `import openmm_hybrid` and openmm.XmlSerializer."""
    from openmm_hybrid.mm import build_system
    from helpers import EXAMPLES
    from openmm_hybrid.hybrid import create_hybrid_system
    built = build_system(ligand=str(EXAMPLES / "t4-lysozyme" / "p-xylene.sdf"), solvent="vacuum")
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_single)
    converted = to_torch_forces(hybrid.system)
    for platform in PLATFORMS:
        e0, f0 = compute(hybrid.system, built.positions, platform)
        e1, f1 = compute(converted, built.positions, platform)
        assert e0 == pytest.approx(e1, abs=FLOAT32_NETWORK_ENERGY_TOL)
        assert np.abs(f0 - f1).max() <= FLOAT32_FORCE_RTOL * np.abs(f1).max()
    path = tmp_path / "system.xml"
    path.write_text(openmm.XmlSerializer.serialize(hybrid.system))
    np.save(tmp_path / "xyz.npy", built.positions.value_in_unit(unit.nanometer))
    script = (
        "import sys, numpy as np, openmm, openmm_hybrid\n"
        f"system = openmm.XmlSerializer.deserialize(open({str(path)!r}).read())\n"
        "context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName('CPU'))\n"
        f"context.setPositions(np.load({str(tmp_path / 'xyz.npy')!r}))\n"
        "state = context.getState(getEnergy=True, getForces=True)\n"
        "np.save(sys.argv[1], state.getForces(asNumpy=True)._value)\n"
        "print(repr(state.getPotentialEnergy()._value))\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "forces.npy")], capture_output=True,
                         text=True, cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    e0, f0 = compute(hybrid.system, built.positions, "CPU")
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(e0, abs=FLOAT32_NETWORK_ENERGY_TOL)
    assert np.abs(np.load(tmp_path / "forces.npy") - f0).max() <= FLOAT32_FORCE_RTOL * np.abs(f0).max()


@requires_ani
def test_openmm_ml_custom_cv_interpolation_matches_ours(pxylene_water, ani_double):
    """openmm-ml's own interpolate=True route (its CustomCVForce holding our force, through the
    registered hybrid-ani2x potential) gives openmm_hybrid.embeddings.interpolation's energies at lambda
    0, 0.5 and 1; only ours also reports dE/dlambda."""
    from openmmml import MLPotential
    from openmm_hybrid.hybrid import create_hybrid_system
    built = pxylene_water
    box = built.topology.getPeriodicBoxVectors()
    ours = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double, interpolate=True)
    theirs = MLPotential("hybrid-ani2x", model=ani_double).createMixedSystem(built.topology, built.system, ours.ml_atoms,
                                                           interpolate=True, embedding="mechanical")
    assert any(isinstance(f, openmm.CustomCVForce) and is_ml_force(f) for f in theirs.getForces())
    for lam in (0.0, 0.5, 1.0):
        e_ours, d_ours = derivative(ours.system, built.positions, "lambda_interpolate", lam, "CPU", box)
        e_theirs, _ = derivative(theirs, built.positions, "lambda_interpolate", lam, "CPU", box)
        # The CPU platform sums some energy parts in float32 across threads in no fixed order:
        # runs differ by one float32 ulp of a ~10^3 kJ/mol sum (2^-14 = 6.1e-5 kJ/mol, seen).
        assert e_ours == pytest.approx(e_theirs, abs=1e-3)
    e0, _ = derivative(ours.system, built.positions, "lambda_interpolate", 0.0, "CPU", box)
    assert d_ours == pytest.approx(e_ours - e0, rel=1e-9)  # E is linear in lambda
