"""OBC2 implicit solvent: OpenMM's native GBSAOBCForce against amber14's CustomGBForce route.

The two compute the same model with the same parameters (mm/implicit_solvent.py); what differs is
the Coulomb constant (native 138.935457644, OpenMM's ONE_4PI_EPS0; the custom expressions
138.935485 kJ nm/mol/e^2), which scales the polar GB energy by 1 - 1.97e-7.  So the tests split
the energy: the polar parts agree after that factor, the ACE surface terms agree directly, both
to double-precision round-off.
"""
import numpy as np
import openmm
import openmm.app as app
import pytest
from openmm import unit
from openmm.app.internal.customgbforces import GBSAOBC2Force

from helpers import EXAMPLES
from openmm_hybrid.errors import HybridError
from openmm_hybrid.mm import build_system
from openmm_hybrid.mm.implicit_solvent import add_native_obc2
from openmm_hybrid.testing import compute

PEPTIDE = EXAMPLES / "inputs" / "peptide-waters-ion.pdb"
NATIVE_COULOMB, CUSTOM_COULOMB = 138.93545764438198, 138.935485  # OpenMM 8.6 ONE_4PI_EPS0; customgbforces
# Both routes evaluated in float64 on the Reference platform: the energies are sums of about
# N^2/2 = 1400 pair terms of size |E|/N or less, so round-off stays below 1e-12 |E|; 1e-9 leaves
# room for the different order of summation and the exp/log implementations.
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def peptide():
    """Capped tripeptide with a thiolate, three crystal waters and a Na+ (52 atoms), hydrogens added."""
    built = build_system(protein=PEPTIDE, solvent="vacuum")
    return built.topology, built.positions


def gb_systems(topology, method, cutoff, surface: bool):
    """(native, custom) Systems of the protein force field plus OBC2 by each route; ``surface``: ACE term."""
    kwargs = dict(nonbondedMethod=method, constraints=None)
    if cutoff is not None:
        kwargs["nonbondedCutoff"] = cutoff
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    native = forcefield.createSystem(topology, **kwargs)
    force = add_native_obc2(native, topology, method, cutoff)
    if not surface:
        force.setSurfaceAreaEnergy(0.0)
    custom = forcefield.createSystem(topology, **kwargs)
    nonbonded = [f for f in custom.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    nonbonded.setReactionFieldDielectric(1.0)
    gb = GBSAOBC2Force(SA="ACE" if surface else None, cutoff=None if cutoff is None else cutoff)
    for i, (radius, screen) in enumerate(GBSAOBC2Force.getStandardParameters(topology)):
        gb.addParticle([nonbonded.getParticleParameters(i)[0], radius, screen])
    gb.finalize()
    if cutoff is not None:
        gb.setNonbondedMethod(openmm.CustomGBForce.CutoffNonPeriodic)
        gb.setCutoffDistance(cutoff)
    custom.addForce(gb)
    for system in (native, custom):
        for f in system.getForces():
            f.setForceGroup(1 if isinstance(f, (openmm.GBSAOBCForce, openmm.CustomGBForce)) else 0)
    return native, custom


@pytest.mark.parametrize("method, cutoff", [(app.NoCutoff, None), (app.CutoffNonPeriodic, 0.9 * unit.nanometer)],
                         ids=["no-cutoff", "cutoff"])
def test_native_obc2_equals_custom_obc2(peptide, method, cutoff):
    topology, positions = peptide
    native_polar, custom_polar = gb_systems(topology, method, cutoff, surface=False)
    native_all, custom_all = gb_systems(topology, method, cutoff, surface=True)
    e_np, f_np = compute(native_polar, positions, groups={1})
    e_cp, f_cp = compute(custom_polar, positions, groups={1})
    e_na, f_na = compute(native_all, positions, groups={1})
    e_ca, f_ca = compute(custom_all, positions, groups={1})
    ratio = NATIVE_COULOMB / CUSTOM_COULOMB
    assert abs(e_np) > 100  # a charged peptide: the polar GB energy is hundreds of kJ/mol
    assert e_np == pytest.approx(ratio * e_cp, rel=RELATIVE)
    assert np.allclose(f_np, ratio * f_cp, rtol=0, atol=RELATIVE * np.abs(f_cp).max())
    surface_native, surface_custom = e_na - e_np, e_ca - e_cp
    assert surface_native > 1  # the ACE term is there
    assert surface_native == pytest.approx(surface_custom, rel=1e-8)
    assert np.allclose(f_na - f_np, f_ca - f_cp, rtol=0, atol=RELATIVE * np.abs(f_cp).max() * 10)
    # the constant alone separates the totals: 1.97e-7 of the polar energy
    assert e_na - e_ca == pytest.approx((ratio - 1) * e_cp, rel=1e-3)


def test_native_obc2_forces_are_the_energy_gradient(peptide):
    """Central differences of the native GB energy (Reference, float64) match its forces."""
    topology, positions = peptide
    native, _ = gb_systems(topology, app.NoCutoff, None, surface=True)
    xyz = np.array(positions.value_in_unit(unit.nanometer))
    _, forces = compute(native, xyz, groups={1})
    h = 1e-5  # nm; the O(h^2) error is far below the tolerance for forces of ~100 kJ/mol/nm
    for atom in (0, 17, 24, 45, 51):  # backbone, CYS SG neighbourhood, water, Na+
        for k in range(3):
            plus, minus = xyz.copy(), xyz.copy()
            plus[atom, k] += h
            minus[atom, k] -= h
            numeric = -(compute(native, plus, groups={1})[0] - compute(native, minus, groups={1})[0]) / (2 * h)
            assert numeric == pytest.approx(forces[atom, k], abs=1e-4 * max(1.0, abs(forces[atom, k])))


def test_native_cpu_platform_within_float32(peptide):
    """The CPU platform's native force runs in float32 with a tabulated logarithm: 1e-5 relative."""
    topology, positions = peptide
    native, _ = gb_systems(topology, app.NoCutoff, None, surface=True)
    e_ref, _ = compute(native, positions, "Reference", groups={1})
    e_cpu, _ = compute(native, positions, "CPU", groups={1})
    # float32 (eps 6e-8) accumulated over ~1400 pair terms, plus the table's interpolation error
    assert e_cpu == pytest.approx(e_ref, rel=1e-5)


def test_builder_routes_and_refusals():
    native = build_system(protein=PEPTIDE, solvent="implicit")
    custom = build_system(protein=PEPTIDE, solvent="implicit", gb_force="custom")
    assert [type(f).__name__ for f in native.system.getForces()].count("GBSAOBCForce") == 1
    assert [type(f).__name__ for f in custom.system.getForces()].count("CustomGBForce") == 1
    assert native.info["force_fields"]["implicit_solvent"].startswith("OBC2: OpenMM GBSAOBCForce")
    assert custom.info["force_fields"]["implicit_solvent"] == "OBC2: amber14 implicit/obc2.xml (CustomGBForce)"
    e_native, _ = compute(native.system, native.positions)
    e_custom, _ = compute(custom.system, native.positions)  # same atoms; added hydrogens differ between builds
    assert e_native == pytest.approx(e_custom, rel=1e-6)  # 1.97e-7 of the polar energy, see the module docstring
    gbn2 = build_system(protein=PEPTIDE, solvent="implicit", implicit_solvent="gbn2", gb_force="custom")
    assert gbn2.info["force_fields"]["implicit_solvent"] == "GBN2: amber14 implicit/gbn2.xml (CustomGBForce)"
    with pytest.raises(HybridError, match="native GBSAOBCForce computes OBC2 only; gbn2 needs gb_force='custom'"):
        build_system(protein=PEPTIDE, solvent="implicit", implicit_solvent="gbn2")
    with pytest.raises(HybridError, match="implicit solvent model must be one of obc2, gbn2, not 'gbsa'"):
        build_system(protein=PEPTIDE, solvent="implicit", implicit_solvent="gbsa")
