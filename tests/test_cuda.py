"""The plugin's CUDA kernel for TorchModuleForce against the Reference platform.

Runs only where the CUDA kernel is built and loads (a CUDA build of torch and OpenMM's CUDA
platform at build time, a GPU at run time); everywhere else these tests are skipped with the
reason.  The CUDA platform sorts atoms spatially and keeps coordinates and forces in its own
layouts (float or double coordinates, 64-bit fixed-point forces), which is what is checked:
energy, forces (on every atom, in the caller's order) and dE/dparameter equal the Reference
platform's, in every precision, with and without periodic boundaries, alone and next to
OpenMM's own forces.
"""
from typing import Optional

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_hybrid.testing import compute
from openmm_hybrid.forces import plugin
from openmm_hybrid.forces import create_module_force, for_platform


def _cuda_kernel_reason() -> Optional[str]:
    if not plugin.is_available():
        return f"plugin not loaded: {plugin.load_error()}"
    if plugin.cuda_load_error() is not None:
        return str(plugin.cuda_load_error())
    if not plugin.has_native_kernel("CUDA"):
        return "the CUDA platform has no TorchModuleForce kernel"
    return None


pytestmark = pytest.mark.skipif(_cuda_kernel_reason() is not None, reason=f"no CUDA kernel: {_cuda_kernel_reason()}")

# relative tolerances per CUDA precision: single keeps float coordinates
TOLERANCE = {"single": 2e-5, "mixed": 2e-5, "double": 1e-10}


class PairEnergy(torch.nn.Module):
    """E = scale * sum_{i<j} eps exp(-r_ij^2/s^2) + sum_i k |x_i - c|^2 (kJ/mol), minimum image in a
    rectangular box when periodic; built on the positions' device (no CPU tensors inside)."""

    periodic: bool

    def __init__(self, periodic: bool):
        super().__init__()
        self.periodic = periodic

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.periodic and scale is None:
            scale = boxvectors
            boxvectors = None
        n = positions.shape[0]
        pairs = torch.triu_indices(n, n, 1, device=positions.device)
        d = positions[pairs[1]] - positions[pairs[0]]
        if boxvectors is not None:
            lengths = torch.diagonal(boxvectors)
            d = d - torch.round(d / lengths) * lengths
        r2 = (d * d).sum(-1)
        energy = 7.0 * torch.exp(-r2 / 0.09).sum() + 3.0 * ((positions - positions.mean(0)) ** 2).sum()
        if scale is not None:
            energy = energy * scale
        return energy


def _system(n, periodic, with_nonbonded):
    """n argon-like particles, the module force in group 1 (scaled by lambda_interpolate), and
    optionally an OpenMM NonbondedForce (PME when periodic) in group 0, which makes the CUDA
    platform reorder the atoms."""
    system = openmm.System()
    box = 2.5
    for _ in range(n):
        system.addParticle(39.9)
    if periodic:
        system.setDefaultPeriodicBoxVectors(openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box))
    if with_nonbonded:
        nonbonded = openmm.NonbondedForce()
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.PME if periodic else openmm.NonbondedForce.NoCutoff)
        nonbonded.setCutoffDistance(1.0)
        for k in range(n):
            nonbonded.addParticle(0.3 if k % 2 else -0.3, 0.34, 0.5)
        system.addForce(nonbonded)
    module = torch.jit.script(PairEnergy(periodic))
    system.addForce(create_module_force(module, periodic=periodic, force_group=1, scale_parameter="lambda_interpolate"))
    rng = np.random.default_rng(3)
    # a jittered lattice keeps particles apart (finite nonbonded energies)
    side = int(np.ceil(n ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    xyz = (grid + 0.5) * (box / side) + rng.uniform(-0.05, 0.05, size=(n, 3))
    return system, xyz * unit.nanometer, (system.getDefaultPeriodicBoxVectors() if periodic else None)


def _derivative(system, xyz, box, platform, properties=None):
    platform = openmm.Platform.getPlatformByName(platform)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, properties or {})
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(xyz)
    context.setParameter("lambda_interpolate", 0.6)
    state = context.getState(getEnergy=True, getForces=True, getParameterDerivatives=True, groups={1})
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer),
            state.getEnergyParameterDerivatives()["lambda_interpolate"])


@pytest.mark.parametrize("precision", ["single", "mixed", "double"])
@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("with_nonbonded", [False, True])
def test_cuda_kernel_matches_reference(precision, periodic, with_nonbonded):
    system, xyz, box = _system(300, periodic, with_nonbonded)
    assert for_platform(system, "CUDA") is system  # runs natively, no conversion to TorchForce
    e_ref, f_ref, d_ref = _derivative(system, xyz, box, "Reference")
    e, f, d = _derivative(system, xyz, box, "CUDA", {"Precision": precision})
    tol = TOLERANCE[precision]
    assert abs(e_ref) > 1.0 and np.abs(f_ref).max() > 1.0
    assert e == pytest.approx(e_ref, rel=tol)
    assert np.abs(f - f_ref).max() <= tol * np.abs(f_ref).max() + 2 ** -32 * 2
    assert d == pytest.approx(d_ref, rel=tol)


def test_cuda_total_with_openmm_forces():
    """The module's forces are added to OpenMM's own in the same buffer: total forces equal the
    Reference platform's (PME, reordered atoms, mixed precision)."""
    system, xyz, box = _system(300, True, True)
    e_ref, f_ref = compute(system, xyz, "Reference", box, {"lambda_interpolate": 1.0})
    e, f = compute(system, xyz, "CUDA", box, {"lambda_interpolate": 1.0})
    assert e == pytest.approx(e_ref, rel=1e-5)
    assert np.abs(f - f_ref).max() <= 1e-4 * np.abs(f_ref).max()


def test_cuda_dynamics_match_reference():
    """20 Verlet steps from the same positions and velocities give the same trajectory as the
    Reference platform (CUDA in double precision)."""
    system, xyz, box = _system(64, True, False)
    velocities = np.random.default_rng(5).normal(0.0, 0.25, size=(64, 3))  # nm/ps
    final = {}
    for name, properties in (("Reference", {}), ("CUDA", {"Precision": "double"})):
        context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName(name), properties)
        context.setPeriodicBoxVectors(*box)
        context.setPositions(xyz)
        context.setVelocities(velocities)
        context.getIntegrator().step(20)
        final[name] = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    moved = np.abs(final["Reference"] - xyz.value_in_unit(unit.nanometer)).max()
    assert moved > 1e-3
    assert np.abs(final["CUDA"] - final["Reference"]).max() < 1e-8
