"""The ML/MM System: agreement with openmm-ml, forces, round trip, interpolation, refusals."""
import numpy as np
import openmm
import openmm.app as app
import pytest
import torch
from openmm import unit

from helpers import requires_ani
from openmm_hybrid.testing import compute
from openmm_hybrid.errors import HybridError, ModelError, RegionError
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.embeddings.region import check_region
from openmm_hybrid.forces.serialization import load_system, save_system

pytestmark = requires_ani


def openmm_ml_reference(topology, system, atoms, dtype, monkeypatch, **kwargs):
    """openmm-ml 1.8's own mechanical embedding with its own 'ani2x' potential.

    openmm-ml loads weights with torchani.models.ANI2x(), which downloads them; here it is
    handed the same torchani ensemble loaded offline (in ``dtype``), so the two sides differ
    only in how the ML term is evaluated.
    """
    import torchani
    from openmmml import MLPotential
    from openmm_hybrid.models.ani import load_torchani_ani2x
    monkeypatch.setattr(torchani.models, "ANI2x", lambda **kw: load_torchani_ani2x().to(dtype))
    return MLPotential("ani2x").createMixedSystem(topology, system, atoms, embedding="mechanical", **kwargs)


@pytest.mark.parametrize("precision, platform, tolerance", [("double", "Reference", 0.01),
                                                            ("single", "CPU", 0.1)])
def test_energy_matches_openmm_ml(complex_vacuum, precision, platform, tolerance, monkeypatch):
    built = complex_vacuum
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", precision=precision)
    assert len(hybrid.ml_atoms) == 18
    reference = openmm_ml_reference(built.topology, built.system, hybrid.ml_atoms,
                                    torch.float64 if precision == "double" else torch.float32, monkeypatch)
    e_ours, _ = compute(hybrid.system, built.positions, platform)
    e_ref, _ = compute(reference, built.positions, platform)
    e_ml, _ = compute(hybrid.system, built.positions, platform, groups={hybrid.force_groups["ml"]})
    assert abs(e_ml) > 1e5  # the ML term is really there (~ -8e5 kJ/mol for p-xylene)
    assert e_ours == pytest.approx(e_ref, abs=tolerance)


def _finite_difference(system, positions, atom, k, h=1e-5, platform="Reference", box=None):
    xyz = np.array(positions.value_in_unit(unit.nanometer))
    energies = []
    for sign in (1, -1):
        moved = xyz.copy()
        moved[atom, k] += sign * h
        energies.append(compute(system, moved * unit.nanometer, platform, box)[0])
    return -(energies[0] - energies[1]) / (2 * h)


def test_finite_difference_forces_solvated(pxylene_water):
    """Forces on ML atoms and on MM atoms next to the region equal -dE/dx (double, PME)."""
    built = pxylene_water
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double")
    box = built.topology.getPeriodicBoxVectors()
    _, forces = compute(hybrid.system, built.positions, "Reference", box)
    xyz = np.array(built.positions.value_in_unit(unit.nanometer))
    ligand = hybrid.ml_atoms
    distance = np.min(np.linalg.norm(xyz[:, None, :] - xyz[None, ligand, :], axis=-1), axis=1)
    neighbours = [i for i in np.argsort(distance) if i not in ligand][:3]
    assert max(distance[neighbours]) < 0.4  # MM atoms in contact with the region
    for atom, k in [(ligand[0], 0), (ligand[5], 2), (ligand[12], 1)] + [(int(n), 1) for n in neighbours]:
        fd = _finite_difference(hybrid.system, built.positions, atom, k, box=box)
        assert forces[atom, k] == pytest.approx(fd, abs=0.05 + 1e-4 * abs(fd)), (atom, k)


def test_ml_term_replaces_mm_internal_terms(complex_vacuum):
    """ML/MM = MM - (MM energy of the region alone) + ML: nothing inside the region is counted
    twice or lost, and the region-protein interactions stay MM (exact without periodicity)."""
    from helpers import EXAMPLES
    from openmm_hybrid.mm import build_system
    built = complex_vacuum
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double")
    ligand = hybrid.ml_atoms
    e_hybrid, _ = compute(hybrid.system, built.positions, "Reference")
    e_ml, _ = compute(hybrid.system, built.positions, "Reference", groups={hybrid.force_groups["ml"]})
    e_mm, _ = compute(built.system, built.positions, "Reference")
    alone = build_system(ligand=str(EXAMPLES / "t4-lysozyme" / "p-xylene.sdf"), solvent="vacuum")
    e_alone, _ = compute(alone.system, built.positions[ligand[0]:ligand[-1] + 1], "Reference")
    assert e_hybrid == pytest.approx(e_mm - e_alone + e_ml, abs=1e-3)


def test_system_xml_round_trip(pxylene_water, tmp_path):
    """system.xml reads back with plain XmlSerializer (and load_system): same energy, forces, groups."""
    built = pxylene_water
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG")
    path = tmp_path / "system.xml"
    save_system(hybrid.system, path)
    box = built.topology.getPeriodicBoxVectors()
    e0, f0 = compute(hybrid.system, built.positions, "Reference", box)
    for reloaded in (openmm.XmlSerializer.deserialize(path.read_text()), load_system(path)):
        e1, f1 = compute(reloaded, built.positions, "Reference", box)
        assert e1 == e0 and np.array_equal(f1, f0)
        assert [f.getForceGroup() for f in reloaded.getForces()] == \
            [f.getForceGroup() for f in hybrid.system.getForces()]
        assert [f.getName() for f in reloaded.getForces()] == [f.getName() for f in hybrid.system.getForces()]


def test_lambda_interpolate_end_states(pxylene_water):
    built = pxylene_water
    box = built.topology.getPeriodicBoxVectors()
    plain = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double")
    interpolating = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double",
                                         interpolate=True)
    assert interpolating.metadata()["global_parameters"] == ["lambda_interpolate"]
    e_mm, _ = compute(built.system, built.positions, "Reference", box)
    e_mlmm, _ = compute(plain.system, built.positions, "Reference", box)
    e0, _ = compute(interpolating.system, built.positions, "Reference", box, {"lambda_interpolate": 0.0})
    e1, _ = compute(interpolating.system, built.positions, "Reference", box, {"lambda_interpolate": 1.0})
    eh, _ = compute(interpolating.system, built.positions, "Reference", box, {"lambda_interpolate": 0.5})
    assert e0 == pytest.approx(e_mm, abs=1e-3)
    assert e1 == pytest.approx(e_mlmm, abs=1e-3)
    assert eh == pytest.approx(0.5 * (e0 + e1), abs=1e-3)


def test_ml_force_group_is_configurable(pxylene_water):
    built = pxylene_water
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", ml_force_group=7)
    assert hybrid.force_groups == {"ml": 7, "mm": [0]}
    with pytest.raises(HybridError, match="force group 0 is already used by MM forces"):
        create_hybrid_system(built.topology, built.system, "resname LIG", ml_force_group=0)
    with pytest.raises(HybridError, match="unknown embedding 'quantum'.*mechanical"):
        create_hybrid_system(built.topology, built.system, "resname LIG", embedding="quantum")


# ---- refusals -------------------------------------------------------------------------------------------

def test_refuses_empty_region(pxylene_water):
    built = pxylene_water
    with pytest.raises(RegionError, match="'resname XYZ' is empty"):
        create_hybrid_system(built.topology, built.system, "resname XYZ")
    with pytest.raises(RegionError, match="empty"):
        create_hybrid_system(built.topology, built.system, [])


def test_refuses_unsupported_element(pxylene_water):
    built = pxylene_water
    sodium = [a.index for a in built.topology.atoms() if a.residue.name == "NA"][:1]
    assert sodium
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    with pytest.raises(ModelError, match=r"element\(s\) Na that model 'ani2x' does not support"):
        create_hybrid_system(built.topology, built.system, ligand + sodium)


def test_refuses_region_cutting_bonds(pxylene_water):
    built = pxylene_water
    with pytest.raises(RegionError, match=r"cuts 10 covalent bond\(s\): LIG1:C\w*-LIG1:H"):
        create_hybrid_system(built.topology, built.system, "resname LIG and element C")


def test_refuses_charged_region_for_neutral_model():
    from openmm_hybrid.mm import build_system
    acetate = build_system(ligand="CC(=O)[O-]", solvent="vacuum")
    assert acetate.info["ligand"]["net_charge"] == -1
    with pytest.raises(ModelError, match=r"net charge -1 e, but model 'ani2x' is for neutral molecules"):
        create_hybrid_system(acetate.topology, acetate.system, "resname LIG")


def test_refuses_non_integral_region_charge():
    topology = app.Topology()
    residue = topology.addResidue("ION", topology.addChain())
    for name in ("C1", "C2"):
        topology.addAtom(name, app.element.carbon, residue)
    system = openmm.System()
    nonbonded = openmm.NonbondedForce()
    for charge in (0.3, -0.3):
        system.addParticle(12.0)
        nonbonded.addParticle(charge, 0.3, 0.1)
    system.addForce(nonbonded)
    with pytest.raises(RegionError, match="charge mismatch: the MM charges of the ML region sum to 0.3000 e"):
        check_region(topology, system, [0])


def test_refuses_region_wider_than_half_box(pxylene_water):
    built = pxylene_water
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    xyz = np.array(built.positions.value_in_unit(unit.nanometer))
    half_box = 0.5 * built.topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    far_water = max((r for r in built.topology.residues() if r.name == "HOH"),
                    key=lambda r: np.linalg.norm(xyz[next(r.atoms()).index] - xyz[ligand[0]]))
    assert np.linalg.norm(xyz[next(far_water.atoms()).index] - xyz[ligand[0]]) > half_box
    region = ligand + [a.index for a in far_water.atoms()]
    with pytest.raises(RegionError, match="more than half the periodic box"):
        create_hybrid_system(built.topology, built.system, region, positions=built.positions)


def test_lambda_interpolate_non_periodic(complex_vacuum):
    """Without periodicity the ML force hands the module the parameter in the box-vector slot."""
    built = complex_vacuum
    interpolating = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double",
                                         interpolate=True)
    plain = create_hybrid_system(built.topology, built.system, "resname LIG", precision="double")
    e_mm, _ = compute(built.system, built.positions, "Reference")
    e_mlmm, _ = compute(plain.system, built.positions, "Reference")
    e0, _ = compute(interpolating.system, built.positions, "Reference", parameters={"lambda_interpolate": 0.0})
    e1, _ = compute(interpolating.system, built.positions, "Reference", parameters={"lambda_interpolate": 1.0})
    assert e0 == pytest.approx(e_mm, abs=1e-3)
    assert e1 == pytest.approx(e_mlmm, abs=1e-3)


def test_interpolation_refuses_constraints_inside_region():
    from openmm_hybrid.mm import build_system
    built = build_system(ligand="CCO", solvent="vacuum", constrain_ligand=True)
    with pytest.raises(HybridError, match=r"constrains 6 bond\(s\) inside the ML region"):
        create_hybrid_system(built.topology, built.system, "resname LIG", interpolate=True)
