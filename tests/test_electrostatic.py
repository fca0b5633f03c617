"""Electrostatic embedding (EMLE) in the ML/MM System.

System: N-methylacetamide (GAFF2/AM1-BCC, the ML region, ANI-2x) in a 2.4 nm TIP3P box with
PME (1295 atoms), embedding cutoff 0.7 nm switched from 0.5 nm (cutoff + region radius + water
extent stays below half the box, as periodic minimum images require).  The EMLE coupling force is put
in its own force group (2) so that it can be evaluated alone.

Independent references: a NumPy implementation (here) of the cutoff selection, switching
weights and minimum-image geometry, combined with the EMLE model object (checked against a
separate NumPy EMLE in test_emle_model.py); openmm-ml 1.8's own mechanical embedding with its
own ANI-2x potential; finite differences; symmetry.
"""
import copy
import json

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from helpers import requires_ani, requires_emle
from openmm_hybrid.analysis.energy_conservation import nve_drift, tighten_pme
from openmm_hybrid.testing import emle_model_path
from openmm_hybrid.errors import HybridError, ModelError
from openmm_hybrid.hybrid import create_hybrid_system

pytestmark = [requires_ani, requires_emle]

CUTOFF, SWITCH = 0.7, 0.5  # nm
PADDING = 1.2  # nm: 2.4 nm box
EMLE_GROUP = 2
ONE_4PI_EPS0 = 138.935456


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small tensors: torch's intra-op threads only compete with OpenMM's and other processes
    (several times faster here on a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nma_water():
    import random
    from openmm_hybrid.mm import build_system
    # Modeller.addSolvent replaces randomly chosen waters by the Na+/Cl- pair: the same box every run
    random.seed(2024)
    return build_system(ligand="CC(=O)NC", solvent="explicit", padding=PADDING)


@pytest.fixture(scope="module")
def emle64():
    from openmm_hybrid.models.emle import EMLEModel
    return EMLEModel(emle_model_path(), precision="double")


def electrostatic(built, model, emle, topology=None, system=None, region="resname LIG", **kwargs):
    options = dict(embedding_cutoff=CUTOFF, emle_force_group=EMLE_GROUP)
    options.update(kwargs)
    return create_hybrid_system(topology or built.topology, system or built.system, region, model=model,
                                embedding="electrostatic", emle_model=emle, **options)


@pytest.fixture(scope="module")
def el_system(nma_water, ani_double, emle64):
    return electrostatic(nma_water, ani_double, emle64)


class Evaluator:
    """One Context, energies (kJ/mol) and forces (kJ/mol/nm) at many geometries."""

    def __init__(self, system, box=None, platform="Reference"):
        self.context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                                      openmm.Platform.getPlatformByName(platform))
        if box is not None:
            self.context.setPeriodicBoxVectors(*box)

    def __call__(self, xyz, groups=-1, parameters=None):
        self.context.setPositions(np.asarray(xyz) * unit.nanometer)
        for name, value in (parameters or {}).items():
            self.context.setParameter(name, value)
        state = self.context.getState(getEnergy=True, getForces=True, groups=groups)
        return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)))


def xyz_of(built):
    return np.array(built.positions.value_in_unit(unit.nanometer))


def box_of(built):
    return np.array([[v for v in vec.value_in_unit(unit.nanometer)] for vec in built.topology.getPeriodicBoxVectors()])


def mm_charges(system):
    force = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    return np.array([force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(system.getNumParticles())])


def numpy_embedding(built, ml_atoms, xyz, cutoff=CUTOFF, switch=SWITCH, periodic=True):
    """Reference geometry and switched charges, written independently of the TorchScript module:
    region made whole and centred, each MM atom at its minimum image about the centroid (cubic
    box), residues selected when an atom is within the cutoff and switched as one with
    w = 1 - prod(1 - S(r)) over their atoms and all ML atoms."""
    box = np.diag(box_of(built)) if periodic else None
    q = mm_charges(built.system)
    ml = xyz[ml_atoms].copy()
    if periodic:
        ml = ml[0] + (ml - ml[0]) - box * np.round((ml - ml[0]) / box)
    center = ml.mean(0)
    ml -= center
    mm_pos, mm_q = [], []
    for residue in built.topology.residues():
        atoms = [a.index for a in residue.atoms() if a.index not in ml_atoms and q[a.index] != 0.0]
        if not atoms:
            continue
        d = xyz[atoms] - center
        if periodic:
            d -= box * np.round(d / box)
        r = np.linalg.norm(d[:, None] - ml[None], axis=-1)
        if r.min() >= cutoff:
            continue
        x = np.clip((r - switch) / (cutoff - switch), 0, 1)
        s = 1 - 10 * x ** 3 + 15 * x ** 4 - 6 * x ** 5
        w = 1 - np.prod(1 - s)
        mm_pos.extend(d)
        mm_q.extend(q[atoms] * w)
    return ml, np.array(mm_pos), np.array(mm_q), q[ml_atoms]


def reference_terms(built, ml_atoms, xyz, emle):
    """(E_static, E_induced, replaced MM Coulomb energy) in kJ/mol and the switched charges, from
    :func:`numpy_embedding` and the EMLE model object."""
    ml, mm, q, q_ml = numpy_embedding(built, ml_atoms, xyz)
    z = [a.element.atomic_number for a in built.topology.atoms() if a.index in set(ml_atoms)]
    static, induced = emle(z, ml, mm, q).tolist()
    coulomb = ONE_4PI_EPS0 * float((q_ml[:, None] * q[None] / np.linalg.norm(ml[:, None] - mm[None], axis=-1)).sum())
    return static, induced, coulomb, q


def residue_distances(built, ml_atoms, xyz):
    """Minimum-image distance (nm) of each residue outside the region to the nearest ML atom."""
    box = np.diag(box_of(built))
    out = {}
    for residue in built.topology.residues():
        atoms = [a.index for a in residue.atoms()]
        if atoms[0] in ml_atoms:
            continue
        d = xyz[atoms][:, None] - xyz[ml_atoms][None]
        d -= box * np.round(d / box)
        out[residue.index] = (atoms, float(np.linalg.norm(d, axis=-1).min()))
    return out


def test_correction_matches_reference(nma_water, el_system, emle64):
    """E_corr = E_EMLE(switched charges) - Coulomb(region MM charges x the same charges), with the
    selection and switching recomputed in NumPy; the ML/MM energy is the mechanical one plus E_corr."""
    built, hybrid = nma_water, el_system
    xyz = xyz_of(built)
    evaluate = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())
    e_corr, _ = evaluate(xyz, groups={EMLE_GROUP})
    static, induced, coulomb, q = reference_terms(built, hybrid.ml_atoms, xyz, emle64)
    print(f"\nE_static {static:.4f}, E_induced {induced:.4f}, MM Coulomb {coulomb:.4f}, E_corr {e_corr:.4f} kJ/mol "
          f"({len(q)} MM charges inside the cutoff)")
    assert len(q) > 150 and abs(static) > 1.0 and abs(induced) > 1.0 and abs(e_corr) > 0.1
    # EMLE's and the reference's Coulomb constants differ by 1e-8 relative (CODATA 2014 vs OpenMM)
    assert e_corr == pytest.approx(static + induced - coulomb, abs=2e-5)
    from openmm_hybrid.analysis.energy import energy_decomposition
    parts = energy_decomposition(hybrid.system, built.positions, built.topology.getPeriodicBoxVectors(),
                                 platform="Reference")
    assert parts["emle"] == pytest.approx(e_corr, abs=1e-8)
    assert parts["emle_static"] == pytest.approx(static, abs=1e-8)
    assert parts["emle_induced"] == pytest.approx(induced, abs=1e-8)
    assert parts["emle_mm_coulomb"] == pytest.approx(coulomb, abs=2e-5)
    total = sum(parts[k] for k in ("mm_bonded", "mm_nonbonded", "ml", "emle", "other") if k in parts)
    assert total == pytest.approx(parts["total"], abs=1e-6)


def test_mm_variant_equals_mechanical(nma_water, ani_double, el_system):
    """method='mm' (EMLE's point charges = the region's MM charges, no polarisation): the EMLE term
    equals the MM Coulomb it replaces, so the System is the mechanical one to round-off."""
    built = nma_water
    mm_variant = electrostatic(built, ani_double, str(emle_model_path()), emle_method="mm", precision="double")
    mechanical = create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double)
    xyz = xyz_of(built)
    box = built.topology.getPeriodicBoxVectors()
    e_mm, f_mm = Evaluator(mm_variant.system, box)(xyz)
    e_mech, f_mech = Evaluator(mechanical.system, box)(xyz)
    print(f"\nmm variant - mechanical: {e_mm - e_mech:.2e} kJ/mol, max force difference "
          f"{np.abs(f_mm - f_mech).max():.2e} kJ/mol/nm")
    assert e_mm == pytest.approx(e_mech, abs=1e-6)
    assert np.abs(f_mm - f_mech).max() < 1e-6
    # not trivially: the replaced Coulomb energy is there, and electrostatic embedding differs
    from openmm_hybrid.analysis.energy import energy_decomposition
    parts = energy_decomposition(mm_variant.system, built.positions, box, platform="Reference")
    assert abs(parts["emle_static"]) > 1.0
    assert parts["emle_static"] == pytest.approx(parts["emle_mm_coulomb"], rel=1e-7)
    e_el, _ = Evaluator(el_system.system, box)(xyz)
    assert abs(e_el - e_mech) > 0.05


def _fd(evaluate, xyz, atom, k, groups, h=1e-5):
    energies = []
    for sign in (1, -1):
        moved = xyz.copy()
        moved[atom, k] += sign * h
        energies.append(evaluate(moved, groups)[0])
    return -(energies[0] - energies[1]) / (2 * h)


def test_finite_difference_forces(nma_water, el_system):
    """Forces of the EMLE term on ML atoms, on MM atoms well inside the cutoff and on MM atoms in
    the switching zone (0.5-0.7 nm) equal -dE/dx."""
    built, hybrid = nma_water, el_system
    xyz = xyz_of(built)
    evaluate = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())
    _, forces = evaluate(xyz, {EMLE_GROUP})
    distances = residue_distances(built, hybrid.ml_atoms, xyz)
    inside = [atoms for atoms, d in distances.values() if d < 0.35][:1]
    edge = [atoms for atoms, d in distances.values() if SWITCH + 0.03 < d < CUTOFF - 0.03][:2]
    assert inside and len(edge) == 2
    picks = [(hybrid.ml_atoms[0], 0), (hybrid.ml_atoms[4], 2), (inside[0][0], 1), (inside[0][1], 2)]
    picks += [(atoms[0], 0) for atoms in edge] + [(edge[0][1], 2)]
    for atom, k in picks:
        fd = _fd(evaluate, xyz, atom, k, {EMLE_GROUP})
        print(f"atom {atom} {'xyz'[k]}: force {forces[atom, k]:+.6f}, finite difference {fd:+.6f} kJ/mol/nm")
        assert forces[atom, k] == pytest.approx(fd, abs=2e-4, rel=1e-5), (atom, k)
    assert any(abs(forces[atoms[0]]).max() > 1e-3 for atoms in edge)  # the edge atoms do feel the switching


def test_energy_continuous_as_ion_crosses_cutoff(nma_water, el_system):
    """A sodium ion moved radially out through the switching zone and the cutoff in 0.008 nm steps:
    every energy step matches the work of the force along it (no jump), the ion's contribution
    is finite inside and exactly zero beyond the cutoff."""
    built, hybrid = nma_water, el_system
    xyz = xyz_of(built)
    sodium = [a.index for a in built.topology.atoms() if a.residue.name == "NA"][0]
    ml = xyz[hybrid.ml_atoms]
    center = ml.mean(0)
    anchor = ml[np.argmax(np.linalg.norm(ml - center, axis=1))]  # the outermost ML atom
    direction = (anchor - center) / np.linalg.norm(anchor - center)
    evaluate = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())
    step = 0.008
    steps = np.arange(CUTOFF - 0.28, CUTOFF + 0.12, step)
    energies, works, nearest = [], [], []
    for s in steps:
        moved = xyz.copy()
        moved[sodium] = anchor + s * direction
        e, f = evaluate(moved, {EMLE_GROUP})
        energies.append(e)
        works.append(f[sodium] @ direction)
        nearest.append(np.linalg.norm(ml - moved[sodium], axis=1).min())
    energies, works, nearest = map(np.array, (energies, works, nearest))
    delta = np.diff(energies)
    predicted = -0.5 * (works[1:] + works[:-1]) * step
    mismatch = np.abs(delta - predicted)
    beyond = nearest >= CUTOFF
    print(f"\nion through the cutoff: E from {energies[0]:.4f} to {energies[-1]:.4f} kJ/mol, largest step "
          f"{np.abs(delta).max():.2e}, largest step-vs-work mismatch {mismatch.max():.2e} kJ/mol")
    assert beyond.any() and (nearest < SWITCH).any()
    assert abs(energies[0] - energies[-1]) > 0.05  # the ion matters while inside
    assert np.ptp(energies[beyond]) < 1e-9  # and not at all beyond the cutoff
    assert mismatch.max() < 1e-4 + 0.05 * np.abs(delta).max()


def test_wrapped_ligand_same_energy(nma_water, el_system):
    """The ligand across the box boundary (atoms wrapped one by one) or whole: same energies."""
    built, hybrid = nma_water, el_system
    xyz = xyz_of(built)
    box = np.diag(box_of(built))
    ml = xyz[hybrid.ml_atoms]
    shift = box - ml.mean(0)  # put the ligand's centre on the box corner
    shifted = xyz + shift
    wrapped = shifted - box * np.floor(shifted / box)
    assert np.ptp(wrapped[hybrid.ml_atoms], axis=0).max() > 0.5 * box[0]  # really split across the boundary
    evaluate = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())
    e_ref, _ = evaluate(xyz, {EMLE_GROUP})
    e_shifted, f_shifted = evaluate(shifted, {EMLE_GROUP})
    e_wrapped, f_wrapped = evaluate(wrapped, {EMLE_GROUP})
    assert e_shifted == pytest.approx(e_ref, abs=1e-8)
    assert e_wrapped == pytest.approx(e_ref, abs=1e-8)
    assert np.abs(f_wrapped - f_shifted).max() < 1e-7
    total_shifted, _ = evaluate(shifted)
    total_wrapped, _ = evaluate(wrapped)
    assert total_wrapped == pytest.approx(total_shifted, abs=1e-5)


def _stretched_water(built, ml_atoms, xyz, stretch):
    """Positions with a hydrogen of the water nearest the region pulled ``stretch`` nm from its
    oxygen, pointing away from the region; returns (positions, oxygen index, hydrogen index)."""
    box = np.diag(box_of(built))
    waters = {res.index for res in built.topology.residues() if res.name == "HOH"}
    distances = residue_distances(built, ml_atoms, xyz)
    oxygen, hydrogen = min((distances[k] for k in waters), key=lambda entry: entry[1])[0][:2]
    away = xyz[oxygen] - xyz[ml_atoms].mean(0)
    away -= box * np.round(away / box)
    out = xyz.copy()
    out[hydrogen] = xyz[oxygen] + stretch * away / np.linalg.norm(away)
    return out, oxygen, hydrogen


@pytest.mark.slow
def test_stretched_residue_is_evaluated_not_refused(nma_water, el_system, emle64):
    """A residue inside the cutoff stretched beyond the minimum-image margin (a water whose O-H is
    0.6 nm, as a minimiser's trial step with relaxed constraints can make; an unseeded CI run was
    stopped by such a geometry): the coupling is evaluated, each atom at its own minimum image,
    and agrees with the NumPy reference; and the hybrid System minimises from such a start."""
    built, hybrid = nma_water, el_system
    xyz, oxygen, hydrogen = _stretched_water(built, hybrid.ml_atoms, xyz_of(built), 0.6)
    evaluate = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())
    e_corr, forces = evaluate(xyz, groups={EMLE_GROUP})
    static, induced, coulomb, q = reference_terms(built, hybrid.ml_atoms, xyz, emle64)
    assert e_corr == pytest.approx(static + induced - coulomb, abs=2e-5)
    assert np.isfinite(forces).all() and np.abs(forces[hydrogen]).max() > 0  # the stretched H is embedded
    context = openmm.Context(hybrid.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
    context.setPeriodicBoxVectors(*built.topology.getPeriodicBoxVectors())
    context.setPositions(xyz * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 100)
    relaxed = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.linalg.norm(relaxed[hydrogen] - relaxed[oxygen]) == pytest.approx(0.09572, abs=1e-3)


@pytest.fixture(scope="module")
def nma_cluster(nma_water):
    """The same atoms without periodicity (NoCutoff): for rotations and ML-atom order."""
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(nma_water.system))
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    topology = copy.deepcopy(nma_water.topology)
    topology.setPeriodicBoxVectors(None)
    assert not system.usesPeriodicBoundaryConditions()
    return topology, system


def test_rotation_translation_and_atom_order_invariance(nma_water, nma_cluster, ani_double, emle64):
    built = nma_water
    topology, system = nma_cluster
    ligand = [a.index for a in topology.atoms() if a.residue.name == "LIG"]
    hybrid = electrostatic(built, ani_double, emle64, topology=topology, system=system, region=ligand)
    permuted = list(np.random.default_rng(5).permutation(ligand))
    hybrid_permuted = electrostatic(built, ani_double, emle64, topology=topology, system=system, region=permuted)
    xyz = xyz_of(built)
    rotation = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0]
    moved = (xyz - xyz.mean(0)) @ rotation.T + np.array([3.0, -1.0, 0.5])
    evaluate, evaluate_permuted = Evaluator(hybrid.system), Evaluator(hybrid_permuted.system)
    e_ref, f_ref = evaluate(xyz, {EMLE_GROUP})
    e_moved, f_moved = evaluate(moved, {EMLE_GROUP})
    e_perm, f_perm = evaluate_permuted(xyz, {EMLE_GROUP})
    assert abs(e_ref) > 0.05 and np.abs(f_ref).max() > 1.0
    assert e_moved == pytest.approx(e_ref, abs=1e-8)
    np.testing.assert_allclose(f_moved, f_ref @ rotation.T, atol=1e-7)
    assert e_perm == pytest.approx(e_ref, abs=1e-8)
    np.testing.assert_allclose(f_perm, f_ref, atol=1e-7)
    total, _ = evaluate(xyz)
    total_moved, _ = evaluate(moved)
    total_perm, _ = evaluate_permuted(xyz)
    assert total_moved == pytest.approx(total, abs=1e-5) and total_perm == pytest.approx(total, abs=1e-5)


def test_interpolation_scales_the_correction(nma_water, ani_double, emle64, el_system):
    """lambda_interpolate: 0 = the MM System, 1 = electrostatic ML/MM, linear in between."""
    built = nma_water
    hybrid = electrostatic(built, ani_double, emle64, interpolate=True)
    xyz = xyz_of(built)
    box = built.topology.getPeriodicBoxVectors()
    evaluate = Evaluator(hybrid.system, box)
    energies = {lam: evaluate(xyz, parameters={"lambda_interpolate": lam})[0] for lam in (0.0, 0.5, 1.0)}
    e_mm, _ = Evaluator(built.system, box)(xyz)
    e_el, _ = Evaluator(el_system.system, box)(xyz)
    e_corr, _ = evaluate(xyz, {EMLE_GROUP}, parameters={"lambda_interpolate": 0.5})
    e_corr_full, _ = Evaluator(el_system.system, box)(xyz, {EMLE_GROUP})
    assert energies[0.0] == pytest.approx(e_mm, abs=1e-4)
    assert energies[1.0] == pytest.approx(e_el, abs=1e-4)
    assert energies[0.5] == pytest.approx(0.5 * (energies[0.0] + energies[1.0]), abs=1e-4)
    assert e_corr == pytest.approx(0.5 * e_corr_full, abs=1e-8)


def test_openmm_ml_registration(nma_water, ani_double, el_system, monkeypatch):
    """embedding='electrostatic' through openmm-ml 1.8's extension point: listed by
    getSupportedEmbeddings, usable with openmm-ml's own ANI-2x (whose ML force is a PythonForce)
    and with openmm-hybrid's potential; the EMLE term is the same either way."""
    import torchani
    from openmmml import MLPotential
    from openmm_hybrid.models.ani import load_torchani_ani2x
    from openmm_hybrid.integrations.openmmml import register_with_openmmml
    register_with_openmmml()  # entry points are not installed in a source checkout
    built = nma_water
    ligand = list(el_system.ml_atoms)
    monkeypatch.setattr(torchani.models, "ANI2x", lambda **kw: load_torchani_ani2x().to(torch.float64))
    potential = MLPotential("ani2x")
    assert "electrostatic" in potential.getSupportedEmbeddings()
    options = dict(emleModel=str(emle_model_path()), embeddingCutoff=CUTOFF, emlePrecision="double",
                   emleForceGroup=EMLE_GROUP)
    theirs_el = potential.createMixedSystem(built.topology, built.system, ligand, embedding="electrostatic",
                                            **options)
    theirs_mech = potential.createMixedSystem(built.topology, built.system, ligand)
    ours = MLPotential("hybrid-ani2x", model=ani_double).createMixedSystem(
        built.topology, built.system, ligand, forceGroup=1, embedding="electrostatic", **options)
    xyz = xyz_of(built)
    box = built.topology.getPeriodicBoxVectors()
    e_corr, _ = Evaluator(el_system.system, box)(xyz, {EMLE_GROUP})
    e_el, _ = Evaluator(theirs_el, box)(xyz)
    e_mech, _ = Evaluator(theirs_mech, box)(xyz)
    assert e_el - e_mech == pytest.approx(e_corr, abs=1e-5)
    e_ours, _ = Evaluator(ours, box)(xyz)
    e_hybrid, _ = Evaluator(el_system.system, box)(xyz)
    assert e_ours == pytest.approx(e_hybrid, abs=1e-6)
    # (openmm-ml's own interpolate=True works too, but its CustomCVForce set-up takes minutes here)
    # the entry point declared in setup.py resolves to a working factory
    from importlib.metadata import EntryPoint
    factory = EntryPoint(name="electrostatic", group="openmmml.embeddings",
                         value="openmm_hybrid.integrations.openmmml:HybridEmbeddingFactory").load()()
    assert hasattr(factory.createEmbedding("electrostatic"), "createMixedSystem")


TOY_MODEL = '''
import torch
class ChargedToy(torch.nn.Module):
    """A harmonic well about the centroid that accepts charged regions (for testing only)."""
    supports_charge: bool
    def __init__(self):
        super().__init__()
        self.supports_charge = True
    def forward(self, atomic_numbers, positions, total_charge):
        d = positions - positions.mean(0)
        return 10.0 * (d * d).sum() + 0.0 * total_charge
'''


@pytest.fixture(scope="module")
def charged_toy(tmp_path_factory):
    namespace = {}
    path = tmp_path_factory.mktemp("toy") / "charged_toy.py"
    path.write_text(TOY_MODEL)
    exec(compile(TOY_MODEL, str(path), "exec"), namespace)
    model_file = path.with_suffix(".pt")
    torch.jit.save(torch.jit.script(namespace["ChargedToy"]()), str(model_file))
    return str(model_file)


def test_charged_ligand(charged_toy, ani_double, emle64):
    """Acetate (net charge -1): the QEq constraint uses it, with a model that supports charge;
    ANI-2x (neutral only) is refused."""
    from openmm_hybrid.mm import build_system
    built = build_system(ligand="CC(=O)[O-]", solvent="explicit", padding=PADDING)
    hybrid = electrostatic(built, charged_toy, emle64, precision="double")
    assert hybrid.region_info["net_charge"] == -1
    xyz = xyz_of(built)
    e_corr, _ = Evaluator(hybrid.system, built.topology.getPeriodicBoxVectors())(xyz, {EMLE_GROUP})
    ml, mm, q, q_ml = numpy_embedding(built, hybrid.ml_atoms, xyz)
    z = [a.element.atomic_number for a in built.topology.atoms() if a.residue.name == "LIG"]
    coulomb = ONE_4PI_EPS0 * float((q_ml[:, None] * q[None] / np.linalg.norm(ml[:, None] - mm[None], axis=-1)).sum())
    anion = float(emle64(z, ml, mm, q, net_charge=-1).sum()) - coulomb
    neutral = float(emle64(z, ml, mm, q, net_charge=0).sum()) - coulomb
    charges = emle64.atomic_properties(z, ml, net_charge=-1)["q"]
    print(f"\nacetate: E_corr {e_corr:.3f} kJ/mol (as if neutral: {neutral:.3f}); QEq charges sum to "
          f"{float(charges.sum()):+.6f} e")
    assert float(charges.sum()) == pytest.approx(-1.0, abs=1e-10)
    assert e_corr == pytest.approx(anion, abs=2e-5)
    assert abs(anion - neutral) > 1.0
    with pytest.raises(ModelError, match="net charge -1"):
        electrostatic(built, ani_double, emle64)


def test_refusals(nma_water, ani_double, charged_toy, emle64):
    built = nma_water
    with pytest.raises(HybridError, match="half the periodic box"):
        electrostatic(built, ani_double, emle64, embedding_cutoff=1.2)
    # fits the box at creation, but not with the region's radius: refused on use
    too_wide = electrostatic(built, ani_double, emle64, embedding_cutoff=1.1)
    with pytest.raises(openmm.OpenMMException, match="minimum images would be ambiguous"):
        Evaluator(too_wide.system, built.topology.getPeriodicBoxVectors())(xyz_of(built), {EMLE_GROUP})
    # fits with the region's radius (0.27 nm), not with a water's extent as well: refused given positions
    with pytest.raises(HybridError, match=r"too small for electrostatic embedding.*residue HOH"):
        electrostatic(built, ani_double, emle64, embedding_cutoff=0.9, positions=built.positions)
    electrostatic(built, ani_double, emle64, embedding_cutoff=0.8, positions=built.positions)
    with pytest.raises(HybridError, match="needs an EMLE parameter file"):
        create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double,
                             embedding="electrostatic")
    with pytest.raises(HybridError, match="emle_method"):
        electrostatic(built, ani_double, str(emle_model_path()), emle_method="polarisable")
    with pytest.raises(HybridError, match="switching distance"):
        electrostatic(built, ani_double, emle64, embedding_switch_distance=0.9)
    with pytest.raises(HybridError, match="electrostatic"):
        create_hybrid_system(built.topology, built.system, "resname LIG", model=ani_double,
                             emle_model=str(emle_model_path()))
    with pytest.raises(HybridError, match="unknown electrostatic-embedding option"):
        electrostatic(built, ani_double, emle64, emle_cutof=0.5)
    # a region EMLE cannot describe (sodium), with a model that accepts it
    with pytest.raises(ModelError, match="element\\(s\\) Na"):
        electrostatic(built, charged_toy, emle64, region="resname NA", precision="double")


def test_cli_embed_energy_and_round_trip(nma_water, charged_toy, tmp_path, capsys):
    """openmm-hybrid embed --embedding electrostatic / energy: settings and force groups in embed.json,
    emle_static/emle_induced reported, components sum to the total, system.xml round trip.
    (The ML model is the toy TorchScript file: the EMLE plumbing is what is tested here.)"""
    from openmm_hybrid.cli import main
    from openmm_hybrid.forces.serialization import load_system
    nma_water.save(tmp_path / "build")
    assert main(["--quiet", "embed", "--input", str(tmp_path / "build"), "--embedding", "electrostatic",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "needs an EMLE parameter file" in capsys.readouterr().err
    assert main(["--quiet", "embed", "--input", str(tmp_path / "build"), "--emle-model", "x.mat",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "only used with --embedding electrostatic" in capsys.readouterr().err
    assert main(["--quiet", "embed", "--input", str(tmp_path / "build"), "--embedding", "electrostatic",
                 "--model", charged_toy, "--emle-model", str(emle_model_path()), "--emle-alpha-mode", "reference",
                 "--embedding-cutoff", str(CUTOFF), "--precision", "double",
                 "--out", str(tmp_path / "embed")]) == 0
    info = json.loads((tmp_path / "embed" / "embed.json").read_text())
    assert info["embedding"] == "electrostatic"
    assert info["embedding_settings"]["emle_alpha_mode"] == "reference"
    assert info["embedding_settings"]["embedding_cutoff_nm"] == CUTOFF
    assert info["force_groups"]["emle"] == info["force_groups"]["ml"] == 1
    capsys.readouterr()
    assert main(["energy", "--input", str(tmp_path / "embed"), "--platform", "Reference"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"emle_static", "emle_induced", "emle_mm_coulomb", "emle", "ml"} <= set(result)
    total = sum(result[k] for k in ("mm_bonded", "mm_nonbonded", "ml", "emle", "other") if k in result)
    assert total == pytest.approx(result["total"], abs=1e-5)
    assert result["emle"] == pytest.approx(result["emle_static"] + result["emle_induced"] - result["emle_mm_coulomb"],
                                           abs=1e-6)
    system = load_system(tmp_path / "embed" / "system.xml")
    assert sorted(f.getName() for f in system.getForces() if f.getName() in ("MLPotential", "EMLEEmbedding")) == \
        ["EMLEEmbedding", "MLPotential"]


@pytest.mark.slow
def test_nve_energy_conservation(nma_water, ani_single):
    """Velocity Verlet, 0.5 fs, 1 ps, ANI-2x in single precision + EMLE in double (the default),
    waters crossing the switching zone: drift reported and bounded like mechanical embedding's
    (tests/test_nve.py)."""
    from test_nve import DRIFT_BOUND_KT
    built = nma_water
    hybrid = electrostatic(built, ani_single, str(emle_model_path()))
    assert hybrid.embedding_settings["emle_precision"] == "double"
    # one thread, deterministic forces, seeded box: the same trajectory every run on a given CPU,
    # so that a failure can be reproduced
    result = nve_drift(tighten_pme(hybrid.system), built.positions, built.topology.getPeriodicBoxVectors(),
                       steps=2000, properties={"Threads": "1", "DeterministicForces": "true"})
    drift, rms, n_dof = result.drift, result.fluctuation, result.n_dof
    print(f"\nelectrostatic ML/MM NVE (velocity Verlet, 0.5 fs, 1 ps, {n_dof} dof): drift {drift:+.5f} "
          f"kT/ns/dof, fluctuation {rms:.3f} kJ/mol")
    assert abs(drift) < DRIFT_BOUND_KT
    assert rms < 1.0


def test_plain_forcefield_xml_route(nma_water, ani_double, emle64):
    """The drop-in route with electrostatic embedding: a plain ``openmm.app.ForceField`` given an
    ``<MLMMEmbedding ... embedding="electrostatic" emle_model=...>`` element returns the System that
    ``create_hybrid_system(..., embedding="electrostatic")`` makes from the same MM System: same
    forces, groups and energy."""
    from io import StringIO
    from openmm import app
    from openmm_hybrid.testing import compute
    from openmm_hybrid.forces import EMLE_FORCE_NAME
    from openmm_hybrid.mm.templates import LigandTemplateGenerator
    topology = nma_water.topology
    kwargs = dict(nonbondedMethod=app.PME, nonbondedCutoff=0.9 * unit.nanometer, rigidWater=True)
    element = (f'<MLMMEmbedding model="ani2x" residues="LIG" embedding="electrostatic" precision="double" '
               f'emle_model="{emle_model_path()}" emle_precision="double" embedding_cutoff="{CUTOFF}" '
               f'emle_force_group="{EMLE_GROUP}"/>')
    plain = app.ForceField("amber14-all.xml", "amber14/tip3p.xml", StringIO(f"<ForceField>{element}</ForceField>"))
    plain.registerTemplateGenerator(LigandTemplateGenerator(["CC(=O)NC"]).generator)
    xml_route = plain.createSystem(topology, **kwargs)

    mm = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    mm.registerTemplateGenerator(LigandTemplateGenerator(["CC(=O)NC"]).generator)
    direct = electrostatic(nma_water, ani_double, emle64, topology=topology,
                           system=mm.createSystem(topology, **kwargs)).system

    def described(system):
        return sorted((type(f).__name__, f.getName(), f.getForceGroup()) for f in system.getForces())
    assert described(xml_route) == described(direct)
    assert any(f.getName() == EMLE_FORCE_NAME and f.getForceGroup() == EMLE_GROUP for f in xml_route.getForces())
    box = topology.getPeriodicBoxVectors()
    e_xml, f_xml = compute(xml_route, nma_water.positions, "Reference", box)
    e_direct, f_direct = compute(direct, nma_water.positions, "Reference", box)
    assert e_xml == pytest.approx(e_direct, abs=1e-6)
    assert np.abs(f_xml - f_direct).max() < 1e-6
