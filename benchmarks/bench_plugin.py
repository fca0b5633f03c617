"""ms per evaluation of the ANI-2x region force: the plugin's TorchModuleForce vs openmm-torch's TorchForce.

Both forces hold the same TorchScript module (openmm-hybrid's ANI-2x region module for the
p-xylene ligand, float32 model), run in this one process on the same platform, positions
and thread settings, and are timed in interleaved rounds (median reported) so machine noise
hits them alike (the order alternates between rounds).  Two measurements:

``ml force``      the ML force alone in a System, ``getState(getEnergy=True, getForces=True)``
``hybrid step``   the whole ML/MM System (p-xylene in water, PME), one Verlet step

(OpenMM 8.6.1 computes forces for energy-only requests too, so there is no separate
energy-only row.)  Reported per evaluation: median and minimum wall time over the rounds and
median CPU time of the process, in ms; ratio = TorchModuleForce / TorchForce (medians).

    python benchmarks/bench_plugin.py [--platform CPU] [--rounds 15] [--evaluations 20] [--torch-threads N]
"""
import argparse
import copy
import statistics
import time

import openmm_hybrid  # noqa: F401  (imports torch first and loads the plugin)
import openmm
import torch
from openmm import unit

from openmm_hybrid._util import set_quiet
from openmm_hybrid.forces import is_ml_force, to_torch_forces
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.mm import build_system
from openmm_hybrid.testing import SOURCE_TREE, use_shared_models

use_shared_models()
REPO = SOURCE_TREE

EXAMPLE = REPO / "examples" / "t4-lysozyme"


def ml_only(system):
    """A System with the same particles and only its ML force."""
    alone = openmm.System()
    for i in range(system.getNumParticles()):
        alone.addParticle(system.getParticleMass(i))
    alone.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    (force,) = [f for f in system.getForces() if is_ml_force(f)]
    alone.addForce(copy.deepcopy(force))
    return alone


def context_for(system, built, platform):
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005 * unit.picosecond),
                             openmm.Platform.getPlatformByName(platform))
    context.setPeriodicBoxVectors(*built.topology.getPeriodicBoxVectors())
    context.setPositions(built.positions)
    return context


def timer(action, context, evaluations):
    def run():
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(evaluations):
            action(context)
        return ((time.perf_counter() - start_wall) / evaluations * 1e3,
                (time.process_time() - start_cpu) / evaluations * 1e3)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--evaluations", type=int, default=20, help="evaluations per timed round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    set_quiet(True)

    built = build_system(ligand=str(EXAMPLE / "p-xylene.sdf"), solvent="explicit", padding=1.2)
    hybrid = create_hybrid_system(built.topology, built.system, "resname LIG", precision="single").system
    # the same module in openmm-torch's TorchForce (which cannot be copied: it is made last)
    variants = {"TorchModuleForce": lambda alone: ml_only(hybrid) if alone else hybrid,
                "TorchForce": lambda alone: to_torch_forces(ml_only(hybrid) if alone else hybrid)}

    actions = {
        "ml force": (lambda c: c.getState(getEnergy=True, getForces=True), True),
        "hybrid step": (lambda c: c.getIntegrator().step(1), False),
    }
    print(f"p-xylene (18 ML atoms) in water, {built.system.getNumParticles()} atoms, platform {args.platform}, "
          f"torch threads {torch.get_num_threads()}, {args.rounds} interleaved rounds x {args.evaluations} "
          f"evaluations; ms per evaluation: median wall / min wall / median CPU")
    print(f"{'measurement':<12} {'TorchForce':>24} {'TorchModuleForce':>24} {'ratio':>6}")
    for label, (action, alone) in actions.items():
        contexts = {name: context_for(make(alone), built, args.platform) for name, make in variants.items()}
        energies = {name: c.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                    for name, c in contexts.items()}
        assert abs(energies["TorchModuleForce"] - energies["TorchForce"]) < 1e-6 * abs(energies["TorchForce"])
        runs = {name: timer(action, c, args.evaluations) for name, c in contexts.items()}
        for run in runs.values():  # warm-up: TorchScript's profiling executor optimises after a few calls
            run()
        samples = {name: [] for name in runs}
        names = list(runs)
        for round_ in range(args.rounds):
            for name in (names if round_ % 2 == 0 else names[::-1]):
                samples[name].append(runs[name]())
        cells = {}
        for name, values in samples.items():
            cells[name] = (statistics.median(v[0] for v in values), min(v[0] for v in values),
                           statistics.median(v[1] for v in values))
        text = {name: "{:7.2f} / {:6.2f} / {:6.2f}".format(*cell) for name, cell in cells.items()}
        print(f"{label:<12} {text['TorchForce']:>24} {text['TorchModuleForce']:>24} "
              f"{cells['TorchModuleForce'][0] / cells['TorchForce'][0]:>6.2f}")


if __name__ == "__main__":
    main()
