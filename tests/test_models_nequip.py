"""The NequIP / Allegro adapter's interface, without the nequip package (default tier).

A deployed nequip model is a TorchScript module ``forward(data: Dict[str, Tensor]) -> Dict[str,
Tensor]`` reading ``pos``, ``edge_index`` and ``atom_types`` and returning ``total_energy`` and
``forces`` (computed inside the module by autograd), with its metadata as TorchScript extra
files.  A stand-in with that interface and a known energy (harmonic pairs within r_max, forces
by autograd inside, as nequip's ``GradientOutput``) checks what the adapter adds: the graph,
the units, the energy whose gradient is the model's force, the atom types read from the
metadata, and the refusals.  The real architectures are compared with nequip's own evaluation in
tests/test_model_families.py.
"""
from typing import Dict

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from openmm_hybrid.cli.embed import parse_model_options
from openmm_hybrid.errors import ModelError
from openmm_hybrid.forces.ml_force import create_ml_force, create_region_module
from openmm_hybrid.models import describe_model, family_of, load_model
from openmm_hybrid.models.nequip import NequIPFamily, element_types

R_MAX = 3.0  # model length units (angstrom here)
K = [0.5, 1.5, 2.5]  # per-type force constants, model energy units per length unit squared


class HarmonicPairs(torch.nn.Module):
    """E = sum over ordered edges (i, j) of 0.125 * (k_ti + k_tj) * (r_ij - 1)^2, i.e. 0.5 * k * (r - 1)^2
    per pair with k the mean of the two types' constants; forces by autograd inside the module, as a
    deployed nequip model."""

    def __init__(self):
        super().__init__()
        self.register_buffer("k", torch.tensor(K, dtype=torch.float64))

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        pos = data["pos"]
        pos.requires_grad_(True)
        i, j = data["edge_index"][0], data["edge_index"][1]
        k = self.k.to(pos.dtype)[data["atom_types"]]
        r = torch.linalg.vector_norm(pos[i] - pos[j], dim=1)
        energy = (0.125 * (k[i] + k[j]) * (r - 1.0) ** 2).sum().reshape(1, 1)
        grad = torch.autograd.grad([energy.sum()], [pos])[0]
        assert grad is not None
        return {"total_energy": energy, "forces": -grad}


def write_stand_in(path, type_names="H C O", extra=None):
    metadata = {"type_names": type_names, "r_max": str(R_MAX), "model_dtype": "float64", **(extra or {})}
    torch.jit.save(torch.jit.script(HarmonicPairs()), str(path),
                   _extra_files={key: value.encode() for key, value in metadata.items()})
    return path


def harmonic_reference(z, xyz_angstrom, types):
    """Energy (model units) and forces of :class:`HarmonicPairs` over all pairs within R_MAX."""
    energy, forces = 0.0, np.zeros_like(xyz_angstrom)
    for a in range(len(z)):
        for b in range(a + 1, len(z)):
            d = xyz_angstrom[a] - xyz_angstrom[b]
            r = np.linalg.norm(d)
            if r < R_MAX:
                k = 0.5 * (K[types[a]] + K[types[b]])
                energy += 0.5 * k * (r - 1.0) ** 2
                forces[a] -= k * (r - 1.0) * d / r
                forces[b] += k * (r - 1.0) * d / r
    return energy, forces


# water and a methanol-like O-C-H fragment; the last H is beyond R_MAX of the water oxygen
Z = [8, 1, 1, 6, 1]
XYZ_NM = np.array([[0.0, 0.0, 0.0], [0.096, 0.0, 0.0], [-0.024, 0.093, 0.0], [0.21, 0.05, 0.03],
                   [0.33, 0.12, 0.05]])


@pytest.mark.parametrize("precision", ["double", "single"])
def test_energy_units_and_model_forces(tmp_path, precision):
    """kcal/mol and angstrom model: energy = model energy * 4.184, forces = the model's own forces
    converted (the adapter's energy has the model's forces as its gradient)."""
    path = write_stand_in(tmp_path / "deployed.pth")
    model = load_model(str(path), precision=precision, energy_scale=4.184)
    assert model.supported_elements == [1, 6, 8] and not model.supports_charge
    module = create_region_module(model, list(range(len(Z))), Z)
    pos = torch.tensor(XYZ_NM, requires_grad=True)
    energy = module(pos)
    forces = -torch.autograd.grad(energy, pos)[0].numpy()
    energy = float(energy.detach())
    e_ref, f_ref = harmonic_reference(Z, XYZ_NM * 10.0, [2, 0, 0, 1, 0])
    # float32: a few roundings of each O(1) term of the sum; float64: round-off
    rel = 1e-5 if precision == "single" else 1e-12
    assert energy == pytest.approx(e_ref * 4.184, rel=rel)
    np.testing.assert_allclose(forces, f_ref * 4.184 * 10.0, atol=rel * 10 * np.abs(f_ref * 41.84).max())
    assert np.linalg.norm(XYZ_NM[4] - XYZ_NM[0]) * 10.0 > R_MAX  # a pair the graph leaves out


def test_nequip_files_are_recognised_by_their_metadata(tmp_path):
    deployed = write_stand_in(tmp_path / "deployed.pth")
    plain = tmp_path / "plain.pth"
    torch.jit.save(torch.jit.script(HarmonicPairs()), str(plain))
    assert isinstance(family_of(str(deployed)), NequIPFamily)
    assert not isinstance(family_of(str(plain)), NequIPFamily)
    assert describe_model(str(deployed)).supported_elements == [1, 6, 8]
    assert describe_model(str(deployed)).supports_charge is False


def test_atom_types_from_the_metadata():
    assert element_types({"type_names": "H C O"}) == {1: 0, 6: 1, 8: 2}
    # nequip 0.6 keeps type_to_chemical_symbol in its stored training config (YAML with Python tags)
    config = "type_names:\n- Hw\n- Ho\n- Cx\ntype_to_chemical_symbol:\n  0: H\n  1: H\n  2: C\n" \
             "_jit_fusion_strategy:\n- !!python/tuple\n  - DYNAMIC\n  - 3\n"
    assert element_types({"type_names": "Hw Ho Cx", "config": config}) == {6: 2}  # H: two types, ambiguous
    assert element_types({"type_names": "Hw Ow"}) == {}


def test_refusals_name_the_problem(tmp_path):
    custom = write_stand_in(tmp_path / "custom.pth", type_names="Hw Ow Cx")
    with pytest.raises(ModelError, match=r"type names of NequIP model .*\(Hw Ow Cx\) are not chemical symbols: "
                                         r"give atom_types"):
        load_model(str(custom))
    model = load_model(str(custom), atom_types=[1, 0])
    with pytest.raises(ModelError, match="atom_types gives 2 nequip types, but the ML region has 5 atoms"):
        create_region_module(model, list(range(5)), Z)
    path = write_stand_in(tmp_path / "deployed.pth")
    with pytest.raises(ModelError, match=r"element\(s\) Br that model"):
        load_model(str(path)).check_region([6, 35], 0)
    with pytest.raises(ModelError, match="net charge -1 e, but model .* is for neutral molecules only"):
        load_model(str(path)).check_region([6, 8, 1], -1)
    with pytest.raises(ModelError, match="option\\(s\\) lengthScale are not used by NequIP models"):
        load_model(str(path), lengthScale=0.1)
    aoti = tmp_path / "model.nequip.pt2"
    aoti.write_bytes(b"not TorchScript")
    with pytest.raises(ModelError, match="AOTInductor file .* compile the model with `nequip-compile --mode "
                                         "torchscript`"):
        load_model(str(aoti))


def test_atom_types_option_overrides_the_metadata(tmp_path):
    path = write_stand_in(tmp_path / "deployed.pth")
    by_metadata = create_region_module(load_model(str(path), precision="double"), list(range(len(Z))), Z)
    swapped = create_region_module(load_model(str(path), precision="double", atom_types=[2, 0, 0, 2, 0]),
                                   list(range(len(Z))), Z)
    pos = torch.tensor(XYZ_NM)
    e_ref, _ = harmonic_reference(Z, XYZ_NM * 10.0, [2, 0, 0, 1, 0])
    e_swapped, _ = harmonic_reference(Z, XYZ_NM * 10.0, [2, 0, 0, 2, 0])
    assert float(by_metadata(pos)) == pytest.approx(e_ref * 96.48533212331002, rel=1e-12)
    assert float(swapped(pos)) == pytest.approx(e_swapped * 96.48533212331002, rel=1e-12)


@pytest.mark.parametrize("precision", ["double", "single"])
def test_inside_openmm(tmp_path, precision):
    """The same energy and forces from TorchModuleForce, which freezes the module (freezing drops
    aten::detach, so the adapter must not rely on it to cut the model's own autograd graph)."""
    path = write_stand_in(tmp_path / "deployed.pth")
    system = openmm.System()
    for _ in Z:
        system.addParticle(12.0)
    system.addForce(create_ml_force(load_model(str(path), precision=precision), list(range(len(Z))), Z))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(XYZ_NM)
    e_ref, f_ref = harmonic_reference(Z, XYZ_NM * 10.0, [2, 0, 0, 1, 0])
    rel = 1e-5 if precision == "single" else 1e-12
    for _ in range(3):  # TorchScript's profiling executor optimises the graph after the first calls
        state = context.getState(getEnergy=True, getForces=True)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        assert energy == pytest.approx(e_ref * 96.48533212331002, rel=rel)
        f_scale = np.abs(f_ref).max() * 964.8533212331002
        np.testing.assert_allclose(forces, f_ref * 964.8533212331002, atol=rel * 10 * f_scale)


def test_model_options_on_the_command_line():
    assert parse_model_options(["energy_scale=4.184", "atom_types=[1, 0]"]) == {"energy_scale": 4.184,
                                                                                 "atom_types": [1, 0]}
    with pytest.raises(ModelError, match="--model-option 'energy_scale': expected KEY=VALUE"):
        parse_model_options(["energy_scale"])
