"""An ordinary OpenMM script, with one change: ``HybridForceField`` instead of ``ForceField``.

T4 lysozyme L99A + p-xylene in TIP3P water: PDBFile, Modeller (addHydrogens, addSolvent),
ForceField.createSystem (PME, HBonds, rigid water), LangevinMiddleIntegrator, Simulation,
StateDataReporter and DCDReporter, exactly as in OpenMM's user guide.  The force field is
``openmm_hybrid.HybridForceField``: the ligand gets GAFF2/AM1-BCC parameters and becomes the ML
region, described by ANI-2x (mechanical embedding) inside OpenMM.

    python examples/forcefield/simulate.py --steps 1000 --out ff-run
    python examples/forcefield/simulate.py --no-protein --padding 1.2 --steps 10   # ligand in water, quick

Outputs in --out: log.csv (StateDataReporter), trajectory.dcd, final.pdb.
"""
import argparse
import sys
from pathlib import Path

from openmm import LangevinMiddleIntegrator, Platform, unit
from openmm.app import DCDReporter, HBonds, Modeller, PDBFile, PME, Simulation, StateDataReporter

from openmm_hybrid import HybridForceField, load_ligand   # the change (ForceField -> HybridForceField)

DATA = Path(__file__).resolve().parent.parent / "t4-lysozyme"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protein", default=str(DATA / "receptor.pdb"))
    parser.add_argument("--no-protein", action="store_true", help="the ligand alone in water")
    parser.add_argument("--ligand", default=str(DATA / "p-xylene.sdf"))
    parser.add_argument("--padding", type=float, default=1.0, help="nm")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--report-interval", type=int, default=100)
    parser.add_argument("--minimize-iterations", type=int, default=200)
    parser.add_argument("--platform", default=None)
    parser.add_argument("--out", default="ff-run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ligand = load_ligand(args.ligand)          # SDF -> OpenMM topology and positions (any toolkit would do)

    # forcefield = ForceField("amber14-all.xml", "amber14/tip3p.xml")          <- the usual line
    forcefield = HybridForceField("amber14-all.xml", "amber14/tip3p.xml",
                                  ligands=[ligand], model="ani2x")           # <- ML/MM instead

    if args.no_protein:
        modeller = Modeller(*ligand.to_openmm())
    else:
        pdb = PDBFile(args.protein)
        modeller = Modeller(pdb.topology, pdb.positions)
        modeller.add(*ligand.to_openmm())
    modeller.addHydrogens(forcefield, pH=7.0)
    modeller.addSolvent(forcefield, model="tip3p", padding=args.padding * unit.nanometer,
                        ionicStrength=0.15 * unit.molar)

    system = forcefield.createSystem(modeller.topology, nonbondedMethod=PME,
                                     nonbondedCutoff=1.0 * unit.nanometer, constraints=HBonds)
    integrator = LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    platform = Platform.getPlatformByName(args.platform) if args.platform else None
    simulation = Simulation(modeller.topology, system, integrator, platform)
    simulation.context.setPositions(modeller.positions)
    simulation.minimizeEnergy(maxIterations=args.minimize_iterations)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin)

    simulation.reporters.append(DCDReporter(str(out / "trajectory.dcd"), args.report_interval))
    simulation.reporters.append(StateDataReporter(str(out / "log.csv"), args.report_interval, step=True,
                                                  potentialEnergy=True, temperature=True, speed=True))
    simulation.reporters.append(StateDataReporter(sys.stdout, args.report_interval, step=True,
                                                  potentialEnergy=True, temperature=True, speed=True))
    simulation.step(args.steps)

    state = simulation.context.getState(getPositions=True, enforcePeriodicBox=True)
    with open(out / "final.pdb", "w") as handle:
        PDBFile.writeFile(simulation.topology, state.getPositions(), handle)
    hybrid = forcefield.hybrid  # what createSystem embedded: ML atoms, model, force groups
    print(f"ML/MM: {len(hybrid.ml_atoms)} ML atoms ({hybrid.model.name}, {hybrid.embedding} embedding, "
          f"ML force group {hybrid.force_groups['ml']}); output in {out}")
    return simulation


if __name__ == "__main__":
    main()
