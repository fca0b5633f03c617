"""OBC2 implicit solvent: OpenMM's native GBSAOBCForce against amber14's CustomGBForce, side by side.

T4 lysozyme L99A + p-xylene (2621 atoms) built twice with ``solvent="implicit"``, once with
``gb_force="native"`` (openmm-hybrid's default) and once with ``gb_force="custom"``
(``implicit/obc2.xml``), on the same positions.  In one process, on the chosen platform, the
script times, interleaved over rounds (median reported):

- one force evaluation of the GB force alone (its force group), of the NonbondedForce alone,
  and of the whole System, for each route;
- ms per step of ``LangevinMiddleIntegrator`` (2 fs, HBonds) for each route.

It also prints the energy difference of the two routes at the same positions (float32 on the
CPU platform; tests/test_implicit_solvent.py compares them in float64).

    python benchmarks/bench_implicit.py [--platform CPU] [--rounds 5] [--evaluations 10] [--steps 50]
"""
import argparse
import os
import statistics
import time

import openmm_hybrid  # noqa: F401  (imports torch before openmmtorch)
import openmm
from openmm import unit

from openmm_hybrid._util import set_quiet
from openmm_hybrid.mm import build_system
from openmm_hybrid.testing import SOURCE_TREE

EXAMPLE = SOURCE_TREE / "examples" / "t4-lysozyme"
GB_GROUP, NONBONDED_GROUP = 2, 1


def make_context(system, positions, platform):
    for force in system.getForces():
        if isinstance(force, (openmm.GBSAOBCForce, openmm.CustomGBForce)):
            force.setForceGroup(GB_GROUP)
        elif isinstance(force, openmm.NonbondedForce):
            force.setForceGroup(NONBONDED_GROUP)
        else:
            force.setForceGroup(0)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 2 * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return context


def time_forces(context, groups, n):
    """(wall, process CPU) ms per force evaluation of ``groups``."""
    context.getState(getForces=True, groups=groups)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        context.getState(getForces=True, groups=groups)
    return 1000 * (time.perf_counter() - start) / n, 1000 * (time.process_time() - cpu) / n


def time_steps(context, n):
    """(wall, process CPU) ms per MD step."""
    context.getIntegrator().step(2)
    start, cpu = time.perf_counter(), time.process_time()
    context.getIntegrator().step(n)
    context.getState(getEnergy=True)
    return 1000 * (time.perf_counter() - start) / n, 1000 * (time.process_time() - cpu) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--evaluations", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    set_quiet(True)
    routes = {}
    for route in ("native", "custom"):
        routes[route] = build_system(protein=str(EXAMPLE / "receptor.pdb"), ligand=str(EXAMPLE / "p-xylene.sdf"),
                                     solvent="implicit", gb_force=route)
    positions = routes["native"].positions  # the same positions for both (added hydrogens differ between builds)
    contexts = {route: make_context(built.system, positions, args.platform) for route, built in routes.items()}
    energies = {route: ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                for route, ctx in contexts.items()}
    samples = {(route, what): [] for route in routes for what in ("gb", "nonbonded", "all", "step")}
    for _ in range(args.rounds):
        for route, context in contexts.items():
            samples[(route, "gb")].append(time_forces(context, {GB_GROUP}, args.evaluations))
            samples[(route, "nonbonded")].append(time_forces(context, {NONBONDED_GROUP}, args.evaluations))
            samples[(route, "all")].append(time_forces(context, -1, args.evaluations))
            samples[(route, "step")].append(time_steps(context, args.steps))
    median = {key: statistics.median(v[0] for v in values) for key, values in samples.items()}
    cpu = {key: statistics.median(v[1] for v in values) for key, values in samples.items()}
    atoms = routes["native"].system.getNumParticles()
    context = contexts["native"]
    threads = context.getPlatform().getPropertyValue(context, "Threads") if args.platform == "CPU" else "-"
    print(f"T4 lysozyme L99A + p-xylene, OBC2 implicit solvent, {atoms} atoms, platform {args.platform}, "
          f"threads {threads}, "
          f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds, median")
    print("wall time (process CPU time), ms")
    print("| route | GB force | NonbondedForce | whole System | MD step (2 fs) |")
    print("| --- | --- | --- | --- | --- |")
    labels = {"native": "GBSAOBCForce (native, default)", "custom": "CustomGBForce (implicit/obc2.xml)"}
    for route in routes:
        print(f"| {labels[route]} | " + " | ".join(f"{median[(route, what)]:.1f} ({cpu[(route, what)]:.1f})"
                                                 for what in ("gb", "nonbonded", "all", "step")) + " |")
    for name, table in (("wall", median), ("CPU", cpu)):
        print(f"custom / native ({name} time): GB force {table[('custom', 'gb')] / table[('native', 'gb')]:.1f}x, "
              f"whole System {table[('custom', 'all')] / table[('native', 'all')]:.1f}x, "
              f"MD step {table[('custom', 'step')] / table[('native', 'step')]:.1f}x")
    print(f"energy at the same positions: native {energies['native']:.3f}, custom {energies['custom']:.3f} kJ/mol "
          f"(difference {energies['native'] - energies['custom']:.4f})")


if __name__ == "__main__":
    main()
