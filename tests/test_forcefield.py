"""The ForceField route: HybridForceField, the <MLMMEmbedding> force-field tag, the template
generator inside Modeller, and the builder/CLI sharing that machinery.

The physics of the ML/MM System itself (agreement with openmm-ml, finite-difference forces,
NVE) is tested in test_hybrid.py / test_nve.py on Systems made by create_hybrid_system; here
the three ways of making the System are shown to give the *same* System, so those tests cover
all three.
"""
import os
import runpy
import subprocess
import sys
from io import StringIO
from typing import List

import numpy as np
import openmm
import openmm.app as app
import pytest
import torch
from openmm import unit

from helpers import EXAMPLES, REPO, requires_ambertools, requires_ani
from openmm_hybrid.testing import compute
from openmm_hybrid import HybridForceField, LigandTemplateGenerator, forcefield_path, load_ligand
from openmm_hybrid.mm.parameters import gaff2
from openmm_hybrid.mm import load_build
from openmm_hybrid.cli import main
from openmm_hybrid.embeddings import MechanicalEmbedding, available_embeddings, base as embedding_registry
from openmm_hybrid.errors import HybridError, LigandError, ModelError, ParameterizationError, RegionError
from openmm_hybrid.forces import is_ml_force

T4 = EXAMPLES / "t4-lysozyme"
PXYLENE = str(T4 / "p-xylene.sdf")

pytestmark = requires_ambertools


def force_table(system):
    """[(force name, force group)] in System order."""
    return [(f.getName(), f.getForceGroup()) for f in system.getForces()]


def constraint_set(system):
    return {frozenset(system.getConstraintParameters(i)[:2]) for i in range(system.getNumConstraints())}


# ----------------------------------------------------------------------------- three routes
ROUTE_SYSTEMS = {
    # name: (build arguments, force-field files besides amber14-all.xml, createSystem arguments)
    "complex-vacuum": (["--protein", str(T4 / "receptor.pdb"), "--solvent", "vacuum"], [],
                       dict(nonbondedMethod=app.NoCutoff)),
    "ligand-water": (["--solvent", "explicit", "--padding", "1.2"], ["amber14/tip3p.xml"],
                     dict(nonbondedMethod=app.PME, nonbondedCutoff=1.0 * unit.nanometer, ewaldErrorTolerance=5e-4)),
}


@pytest.fixture(scope="module", params=sorted(ROUTE_SYSTEMS))
def three_routes(request, tmp_path_factory, ani_single):
    """The same system made three ways.

    1. ``openmm-hybrid build`` + ``embed`` (system.xml read back);
    2. ``HybridForceField("amber14-all.xml", ..., ligands=[sdf], model=...)``;
    3. a plain ``ForceField`` with the shipped ``openmm-hybrid/ani2x.xml`` and the ligand
       template generator.
    Routes 2 and 3 read the topology the builder wrote (same atoms, same order, same box) and
    use the builder's createSystem arguments (HBonds, rigid water).
    Systems: T4 lysozyme L99A + p-xylene in vacuum; p-xylene in TIP3P with PME.
    """
    build_args, files, kwargs = ROUTE_SYSTEMS[request.param]
    kwargs = dict(kwargs, constraints=app.HBonds, rigidWater=True)
    root = tmp_path_factory.mktemp(request.param)
    assert main(["--quiet", "build", "--ligand", PXYLENE, *build_args, "--out", str(root / "build")]) == 0
    assert main(["--quiet", "embed", "--input", str(root / "build"), "--out", str(root / "embed")]) == 0
    cli = load_build(root / "embed")
    topology = load_build(root / "build").topology

    hybrid_ff = HybridForceField("amber14-all.xml", *files, ligands=[PXYLENE], model=ani_single)
    hybrid_system = hybrid_ff.createSystem(topology, **kwargs)

    plain = app.ForceField("amber14-all.xml", *files, "openmm-hybrid/ani2x.xml")
    plain.registerTemplateGenerator(LigandTemplateGenerator([PXYLENE]).generator)
    plain_system = plain.createSystem(topology, **kwargs)
    return {"name": request.param, "cli": cli, "hybrid_ff": hybrid_ff,
            "systems": {"CLI build+embed": cli.system, "HybridForceField": hybrid_system,
                        "ForceField + XML": plain_system}}


@requires_ani
def test_three_routes_same_forces_groups_constraints(three_routes):
    cli = three_routes["cli"]
    systems = three_routes["systems"]
    tables = {name: force_table(s) for name, s in systems.items()}
    reference = tables["CLI build+embed"]
    assert ("MLPotential", 1) in reference and ("NonbondedForce", 0) in reference
    assert {g for n, g in reference if n != "MLPotential"} == {0}
    for name, table in tables.items():
        assert table == reference, name
    ml_atoms = cli.info["ml_atoms"]
    assert len(ml_atoms) == 18 and three_routes["hybrid_ff"].hybrid.ml_atoms == ml_atoms
    metadata = three_routes["hybrid_ff"].hybrid.metadata()  # what embed.json records, region included
    assert metadata == {key: cli.info[key] for key in metadata} and metadata["region"] == "resname LIG"
    constraints = {name: constraint_set(s) for name, s in systems.items()}
    assert constraints["HybridForceField"] == constraints["CLI build+embed"] == constraints["ForceField + XML"]
    assert len(constraints["HybridForceField"]) > 1000  # protein X-H bonds / rigid waters are constrained ...
    region = set(ml_atoms)
    assert not [c for c in constraints["HybridForceField"] if c & region]  # ... the ML region's are not
    # The MM forces are the same parameter for parameter (XML text of each force).
    for name, system in systems.items():
        for mine, theirs in zip(system.getForces(), systems["CLI build+embed"].getForces()):
            if not is_ml_force(mine):
                assert openmm.XmlSerializer.serialize(mine) == openmm.XmlSerializer.serialize(theirs), \
                    (name, mine.getName())
        assert [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()] == \
            [v.value_in_unit(unit.nanometer) for v in systems["CLI build+embed"].getDefaultPeriodicBoxVectors()]


@requires_ani
def test_three_routes_same_energies(three_routes):
    """Same energies to round-off, by force group (MM: 0, ML: 1) and in total."""
    cli = three_routes["cli"]
    box = cli.state.getPeriodicBoxVectors() if three_routes["name"] == "ligand-water" else None
    energies = {}
    for name, system in three_routes["systems"].items():
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        if box is not None:
            context.setPeriodicBoxVectors(*box)
        context.setPositions(cli.positions)
        energies[name] = {key: context.getState(getEnergy=True, **({} if key == "total" else {"groups": {key}}))
                          .getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) for key in (0, 1, "total")}
    reference = energies["CLI build+embed"]
    assert reference[1] < -8e5  # ANI-2x energy of p-xylene, self energies included
    for name, by_group in energies.items():
        for key, value in by_group.items():
            assert value == pytest.approx(reference[key], rel=1e-12, abs=1e-9), (name, key)


def test_embedding_runs_after_implicit_solvent_script(tmp_path):
    """implicit/obc2.xml adds its GB force in a Script; the embedding's Script runs after it
    whatever the file order, so the System is the same as with HybridForceField."""
    model_path = tmp_path / "chain.pt"
    torch.jit.save(torch.jit.script(HarmonicChain()), str(model_path))
    top, pos = load_ligand(PXYLENE).to_openmm()
    xml = f'<ForceField><MLMMEmbedding model="{model_path}" region="resname LIG"/></ForceField>'
    plain = app.ForceField("amber14-all.xml", StringIO(xml), "implicit/obc2.xml")
    plain.registerTemplateGenerator(LigandTemplateGenerator([PXYLENE]).generator)
    plain_system = plain.createSystem(top)
    ff = HybridForceField("amber14-all.xml", "implicit/obc2.xml", ligands=[PXYLENE], model=str(model_path))
    hybrid_system = ff.createSystem(top)
    assert force_table(plain_system) == force_table(hybrid_system)
    assert ("CustomGBForce", 0) in force_table(plain_system) and ("MLPotential", 1) in force_table(plain_system)
    assert compute(plain_system, pos)[0] == pytest.approx(compute(hybrid_system, pos)[0], rel=1e-12)


# ----------------------------------------------------------------------------- several ligands
def _spread_ligands(ligands_and_offsets):
    """Modeller holding each ligand's own conformer, centred on an offset (nm)."""
    modeller = None
    for ligand, offset in ligands_and_offsets:
        top, pos = ligand.to_openmm()
        xyz = np.array(pos.value_in_unit(unit.nanometer))
        xyz += np.array(offset, dtype=float) - xyz.mean(axis=0)
        shifted = [openmm.Vec3(*map(float, p)) for p in xyz] * unit.nanometer
        if modeller is None:
            modeller = app.Modeller(top, shifted)
        else:
            modeller.add(top, shifted)
    return modeller


@requires_ani
def test_several_ligands_each_parametrised_once_and_cached(tmp_path, monkeypatch, ani_single):
    """Two copies of p-xylene, phenol (ML region) and acetate (MM, charge -1) in water with PME,
    HBonds, rigid water and hydrogen mass repartitioning, through Modeller.addHydrogens/addSolvent."""
    monkeypatch.setenv("OPENMM_HYBRID_CACHE", str(tmp_path / "empty-cache"))
    runs: List[str] = []
    from_scratch = gaff2._gaff2_from_scratch

    def counting(ligand, *args, **kwargs):  # every real antechamber/sqm run passes here
        runs.append(ligand.canonical_smiles)
        return from_scratch(ligand, *args, **kwargs)

    monkeypatch.setattr(gaff2, "_gaff2_from_scratch", counting)
    specs = [(PXYLENE, "XYL"), ("Oc1ccccc1", "PHN"), ("CC(=O)[O-]", "ACT")]
    xylene, phenol, acetate = [load_ligand(spec, resname=name) for spec, name in specs]
    modeller = _spread_ligands([(xylene, (0, 0, 0)), (xylene, (0.9, 0, 0)), (phenol, (0, 0.9, 0)),
                                (acetate, (0, 0, 0.9))])
    region = "resname XYL or resname PHN"
    ff = HybridForceField("amber14-all.xml", "amber14/tip3p.xml", ligands=[xylene, phenol, acetate],
                          model=ani_single, region=region)

    n_atoms = modeller.topology.getNumAtoms()
    modeller.addHydrogens(ff)  # Modeller uses the MM force field: nothing embedded, no hydrogen added
    assert modeller.topology.getNumAtoms() == n_atoms and ff.hybrid is None
    modeller.addSolvent(ff, padding=1.2 * unit.nanometer, neutralize=True)
    ions = [r.name for r in modeller.topology.residues() if r.name in ("NA", "CL")]
    assert ions == ["NA"]  # acetate's -1 neutralised: Modeller saw the MM charges
    assert ff.hybrid is None

    kwargs = dict(nonbondedMethod=app.PME, nonbondedCutoff=0.8 * unit.nanometer, constraints=app.HBonds,
                  rigidWater=True, hydrogenMass=2.0 * unit.amu)
    system = ff.createSystem(modeller.topology, **kwargs)

    # Each molecule parametrised exactly once (p-xylene appears twice), charges per residue.
    assert sorted(runs) == sorted({xylene.canonical_smiles, phenol.canonical_smiles, acetate.canonical_smiles})
    records = ff.ligand_generator.records
    assert [r.from_cache for r in records] == [False, False, False]
    assert ff.ligand_generator.residue_charges == {"XYL": 0, "PHN": 0, "ACT": -1}
    nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    charges = np.array([nonbonded.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                        for i in range(system.getNumParticles())])
    atoms = list(modeller.topology.atoms())
    by_residue = {}
    for atom in atoms:
        by_residue.setdefault((atom.residue.name, atom.residue.index), []).append(atom.index)
    for (name, _), indices in by_residue.items():
        expected = {"XYL": 0, "PHN": 0, "ACT": -1, "NA": 1, "HOH": 0}[name]
        assert charges[indices].sum() == pytest.approx(expected, abs=1e-6), name
    assert charges.sum() == pytest.approx(0.0, abs=1e-5)

    # ML region: both xylenes and phenol, one ML force; no constraints inside it, acetate's
    # and water's constraints kept; hydrogen masses repartitioned everywhere but in water.
    hybrid = ff.hybrid
    ml_atoms = [a.index for a in atoms if a.residue.name in ("XYL", "PHN")]
    assert hybrid.ml_atoms == ml_atoms and len(ml_atoms) == 2 * 18 + 13
    assert hybrid.region_info["net_charge"] == 0
    assert [g for n, g in force_table(system) if n == "MLPotential"] == [1]
    constrained = constraint_set(system)
    assert not [c for c in constrained if c & set(ml_atoms)]
    acetate_h = [a.index for a in atoms if a.residue.name == "ACT" and a.element.symbol == "H"]
    assert all(any(h in c for c in constrained) for h in acetate_h)
    n_water = sum(1 for r in modeller.topology.residues() if r.name == "HOH")
    water = [a.index for a in atoms if a.residue.name == "HOH"]
    assert sum(1 for c in constrained if c <= set(water)) == 3 * n_water
    masses = [system.getParticleMass(i).value_in_unit(unit.amu) for i in range(system.getNumParticles())]
    region_h = [i for i in ml_atoms if atoms[i].element.symbol == "H"]
    assert all(masses[i] == pytest.approx(2.0) for i in region_h + acetate_h)
    assert all(masses[i] == pytest.approx(1.007947) for i in water if atoms[i].element.symbol == "H")

    # The ML term is ANI-2x of the three molecules together, evaluated here independently
    # (the region lies within half a box of its first atom, so no periodic image is involved).
    xyz = np.array(modeller.positions.value_in_unit(unit.nanometer))
    box = modeller.topology.getPeriodicBoxVectors()
    assert np.linalg.norm(xyz[ml_atoms] - xyz[ml_atoms[0]], axis=1).max() < 0.5 * box[0][0].value_in_unit(unit.nanometer)
    z = torch.tensor([atoms[i].element.atomic_number for i in ml_atoms])
    with torch.no_grad():
        expected_ml = float(ani_single.module(z, torch.tensor(xyz[ml_atoms], dtype=torch.float32),
                                              torch.tensor(0.0)))
    e_ml, _ = compute(system, modeller.positions, "CPU", box, groups={1})
    assert e_ml == pytest.approx(expected_ml, rel=1e-6)

    # A second build reads all three from the disk cache: no antechamber/sqm run.
    again = [load_ligand(spec, resname=name) for spec, name in specs]
    ff2 = HybridForceField("amber14-all.xml", "amber14/tip3p.xml", ligands=again, model=ani_single, region=region)
    system2 = ff2.createSystem(modeller.topology, **kwargs)
    assert len(runs) == 3
    assert [r.from_cache for r in ff2.ligand_generator.records] == [True, True, True]
    e1, _ = compute(system, modeller.positions, "CPU", box)
    e2, _ = compute(system2, modeller.positions, "CPU", box)
    assert e2 == pytest.approx(e1, abs=1e-3)

    # The default region (the ligands' residues) includes the acetate, which ANI-2x refuses.
    ff3 = HybridForceField("amber14-all.xml", "amber14/tip3p.xml", ligands=again, model=ani_single)
    with pytest.raises(ModelError, match=r"net charge -1 e.*neutral molecules only"):
        ff3.createSystem(modeller.topology, **kwargs)


def test_amidinium_net_charge():
    """A cationic ligand (acetamidinium, +1): right net charge; the ligand stays flexible."""
    ligand = load_ligand("CC(=[NH2+])N", resname="AMD")
    ff = HybridForceField("amber14-all.xml", ligands=[ligand], model=None)
    top, _ = ligand.to_openmm()
    system = ff.createSystem(top, constraints=app.HBonds)
    nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    charges = [nonbonded.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
               for i in range(system.getNumParticles())]
    assert sum(charges) == pytest.approx(1.0, abs=1e-6)
    assert ff.ligand_generator.residue_charges == {"AMD": 1}
    assert system.getNumConstraints() == 0  # the ligand (the future ML region) stays flexible
    bonds = [f for f in system.getForces() if isinstance(f, openmm.HarmonicBondForce)][0]
    assert bonds.getNumBonds() == top.getNumBonds()  # every X-H bond keeps its MM term


# ----------------------------------------------------------------------------- errors
def _pxylene_topology():
    return load_ligand(PXYLENE).to_openmm()[0]


def test_error_residue_without_template_or_molecule():
    ff = HybridForceField("amber14-all.xml", ligands=["CCO"], model=None)
    with pytest.raises(ParameterizationError, match=r"(?s)residue LIG 1 \(chain 1\) has no template: .* matches "
                                                    r"none of the molecules given \(CCO \(LIG\)\); .*--forcefield "
                                                    r"FILE.xml.*ligands=\[...\].*No template found for residue 0 \(LIG\)"):
        ff.createSystem(_pxylene_topology())
    ff = HybridForceField("amber14-all.xml", region="resname LIG", model=None)
    with pytest.raises(ParameterizationError, match=r"molecules given \(none\)"):
        ff.createSystem(_pxylene_topology())


def test_error_hydrogens_do_not_match():
    top, pos = load_ligand(PXYLENE).to_openmm()
    modeller = app.Modeller(top, pos)
    modeller.delete([a for a in modeller.topology.atoms() if a.element.symbol == "H"][:1])
    ff = HybridForceField("amber14-all.xml", ligands=[PXYLENE], model=None)
    with pytest.raises(LigandError, match=r"matches the heavy atoms of ligand 'p-xylene' but its hydrogens do not "
                                          r"match the molecule \(9 hydrogens in the residue, 10 in the molecule\)"):
        ff.createSystem(modeller.topology)


def test_error_unknown_embedding_lists_known():
    known = ", ".join(available_embeddings())
    with pytest.raises(HybridError, match=rf"unknown embedding 'quantum'; available: {known}"):
        HybridForceField("amber14-all.xml", ligands=[PXYLENE], embedding="quantum")
    with pytest.raises(HybridError, match=rf"unknown embedding 'quantum'; available: {known}"):
        app.ForceField("amber14-all.xml",
                       StringIO('<ForceField><MLMMEmbedding residues="LIG" embedding="quantum"/></ForceField>'))


def test_error_region_and_element_problems():
    with pytest.raises(HybridError, match="needs a 'residues'"):
        app.ForceField(StringIO('<ForceField><MLMMEmbedding model="ani2x"/></ForceField>'))
    with pytest.raises(HybridError, match="already contain an <MLMMEmbedding>"):
        HybridForceField("amber14-all.xml", forcefield_path("ani2x"), ligands=[PXYLENE])
    with pytest.raises(HybridError, match="already has an ML/MM embedding"):
        app.ForceField(forcefield_path("ani2x"), forcefield_path("ani2x"))
    with pytest.raises(HybridError, match="needs the ML region"):
        HybridForceField("amber14-all.xml")
    ff = app.ForceField("amber14-all.xml", StringIO(
        '<ForceField><MLMMEmbedding model="ani2x" residues="XYZ"/></ForceField>'))
    ff.registerTemplateGenerator(LigandTemplateGenerator([PXYLENE]).generator)
    with pytest.raises(RegionError, match=r"ML region \(residues XYZ\) selects no atoms of the topology "
                                          r"\(18 atoms; residue names: LIG\)"):
        ff.createSystem(_pxylene_topology())


# ----------------------------------------------------------------------------- XML options
class HarmonicChain(torch.nn.Module):
    """A tiny model following the contract (springs along the atom chain), cheap to load."""

    supported_elements: List[int]

    def __init__(self):
        super().__init__()
        self.supported_elements = [1, 6, 8]

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        d = positions[1:] - positions[:-1]
        return 500.0 * ((torch.sqrt((d * d).sum(-1)) - 0.15) ** 2).sum()


def test_xml_attributes_reach_model_and_embedding(tmp_path, monkeypatch):
    """Model file, precision, forceGroup and interpolate attributes are used; every other
    attribute reaches the embedding method as an option; lambda_interpolate = 0 is the MM System
    even with constraints=HBonds (the region's X-H bonds keep their MM terms)."""
    model_path = tmp_path / "chain.pt"
    torch.jit.save(torch.jit.script(HarmonicChain()), str(model_path))
    received = {}

    class Probe(MechanicalEmbedding):
        name = "probe"

        def settings(self, **options):
            return {}

        def create_system(self, topology, system, atoms, model, force_group, interpolate, total_charge=0.0,
                          **options):
            received.update(options)
            return self.mechanical_system(topology, system, atoms, model, force_group, interpolate, total_charge)

    monkeypatch.setitem(embedding_registry._EMBEDDINGS, "probe", Probe())
    xml = (f'<ForceField><MLMMEmbedding model="{model_path}" residues="LIG" embedding="probe" precision="double" '
           f'forceGroup="3" interpolate="true" emleModel="/models/emle.mat" cutoff="1.2" mmCharges="false" '
           f'order="2"/></ForceField>')
    ff = app.ForceField("amber14-all.xml", StringIO(xml))
    ff.registerTemplateGenerator(LigandTemplateGenerator([PXYLENE]).generator)
    top, pos = load_ligand(PXYLENE).to_openmm()
    system = ff.createSystem(top, constraints=app.HBonds)
    assert received == {"emleModel": "/models/emle.mat", "cutoff": 1.2, "mmCharges": False, "order": 2}
    assert ("MLPotential", 3) in force_table(system)
    assert system.getNumConstraints() == 0

    mm_ff = HybridForceField("amber14-all.xml", ligands=[PXYLENE], model=None)
    mm_system = mm_ff.createSystem(top, constraints=app.HBonds)
    e_mm, _ = compute(mm_system, pos)
    e_lambda0, _ = compute(system, pos, parameters={"lambda_interpolate": 0.0})
    e_lambda1, _ = compute(system, pos, parameters={"lambda_interpolate": 1.0})
    e_ml, _ = compute(system, pos, groups={3})
    assert e_lambda0 == pytest.approx(e_mm, abs=1e-6)
    assert abs(e_lambda1 - e_lambda0) > 1.0  # the ML model really replaces the ligand's MM terms
    xyz = torch.tensor(np.array(pos.value_in_unit(unit.nanometer)), dtype=torch.float64)
    assert e_ml == pytest.approx(float(HarmonicChain()(torch.zeros(18), xyz, torch.tensor(0.0))), rel=1e-9)


def test_shipped_file_by_name_and_without_import():
    """``ForceField(..., "openmm-hybrid/ani2x.xml")`` resolves by name, and the file works in a
    script that never imports openmm_hybrid (OpenMM would otherwise ignore the unknown tag)."""
    ff = app.ForceField("amber14-all.xml", "openmm-hybrid/ani2x.xml")
    assert type(ff.getGenerators()[0]).__name__ == "MLMMEmbeddingGenerator"
    assert os.path.isfile(forcefield_path("ani2x"))
    code = ("import sys, openmm.app as app\n"
            f"ff = app.ForceField('amber14-all.xml', {forcefield_path('ani2x')!r})\n"
            "generator = ff.getGenerators()[0]\n"
            "print(type(generator).__name__, generator.model, generator.residues, generator.embedding)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "MLMMEmbeddingGenerator ani2x ['LIG'] mechanical"


# ----------------------------------------------------------------------------- the example
@requires_ani
def test_example_script_runs(tmp_path):
    example = runpy.run_path(str(EXAMPLES / "forcefield" / "simulate.py"))
    simulation = example["main"](["--no-protein", "--padding", "1.2", "--steps", "6", "--report-interval", "3",
                                  "--minimize-iterations", "5", "--platform", "CPU", "--out", str(tmp_path)])
    names = [f.getName() for f in simulation.system.getForces()]
    assert "MLPotential" in names
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + steps 3 and 6
    assert all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    assert (tmp_path / "trajectory.dcd").stat().st_size > 0 and (tmp_path / "final.pdb").is_file()


def test_shipped_initialization_script_only_imports_and_registers():
    """Loading a force-field file runs its <InitializationScript> (OpenMM's behaviour, docs/forcefield.md):
    the shipped files' scripts hold the import they need and the parser registration, nothing else."""
    import xml.etree.ElementTree as ET
    from openmm_hybrid.forcefield import FORCEFIELD_FILES, forcefield_path
    for name in FORCEFIELD_FILES:
        scripts = ET.parse(forcefield_path(name)).getroot().findall("InitializationScript")
        lines = [line.strip() for script in scripts for line in script.text.splitlines() if line.strip()]
        assert lines == ["import openmm_hybrid.forcefield",
                         "openmm_hybrid.forcefield.register_missed_elements(self, trees)"], (name, lines)
