"""ms/step of electrostatic (EMLE) over mechanical embedding, side by side on the same System.

Pure MM, mechanical embedding (ANI-2x) and electrostatic embedding (ANI-2x + EMLE: method
electrostatic, nonpol, and EMLE in float32 instead of the default float64) run in this one process on the same System, positions, platform
and integrator (LangevinMiddle, 1 fs), interleaved over several rounds so that machine load
hits them alike; the median round is reported, with the process CPU time per step (less
sensitive to other processes on a shared machine than wall time).

    python benchmarks/bench_electrostatic.py --emle-model PATH/emle_qm7_aev.mat
    python benchmarks/bench_electrostatic.py --system complex     # T4 lysozyme + p-xylene in water

The EMLE model file defaults to ``$OPENMM_HYBRID_EMLE_MODEL`` or ``../shared/models/emle/``
beside the repository.
"""
import argparse
import os
import statistics
import time

import openmm_hybrid  # noqa: F401  (imports torch before openmmtorch)
import openmm
import torch
from openmm import unit

from openmm_hybrid._util import set_quiet
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.mm import build_system
from openmm_hybrid.models import load_model
from openmm_hybrid.testing import SOURCE_TREE, emle_model_path, use_shared_models

use_shared_models()
REPO = SOURCE_TREE
DEFAULT_EMLE = str(emle_model_path())

EXAMPLE = REPO / "examples" / "t4-lysozyme"


def make_context(system, built, platform):
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    context.setPeriodicBoxVectors(*built.topology.getPeriodicBoxVectors())
    context.setPositions(built.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return context, integrator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["ligand-water", "complex"], default="ligand-water",
                        help="p-xylene in a 3.2 nm water box (default) or the bundled T4 lysozyme complex")
    parser.add_argument("--emle-model", default=DEFAULT_EMLE)
    parser.add_argument("--embedding-cutoff", type=float, default=1.0, help="nm")
    parser.add_argument("--precision", choices=["single", "double"], default="single", help="ANI-2x precision")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    set_quiet(True)

    if args.system == "complex":
        built = build_system(protein=str(EXAMPLE / "receptor.pdb"), ligand=str(EXAMPLE / "p-xylene.sdf"),
                             solvent="explicit", padding=1.0, box_shape="dodecahedron")
    else:
        # cutoff + ligand radius + a water's extent must stay below half the box: 3.2 nm for 1.0 nm
        built = build_system(ligand=str(EXAMPLE / "p-xylene.sdf"), solvent="explicit", padding=1.6)
    ani = load_model("ani2x", precision=args.precision)
    common = dict(model=ani, precision=args.precision)
    emle = dict(embedding="electrostatic", emle_model=args.emle_model, embedding_cutoff=args.embedding_cutoff)
    systems = {
        "pure MM": built.system,
        "mechanical (ANI-2x)": create_hybrid_system(built.topology, built.system, "resname LIG", **common).system,
        "electrostatic (ANI-2x + EMLE)": create_hybrid_system(built.topology, built.system, "resname LIG",
                                                              **common, **emle).system,
        "electrostatic, nonpol": create_hybrid_system(built.topology, built.system, "resname LIG", **common,
                                                      **emle, emle_method="nonpol").system,
        "electrostatic, EMLE in float32": create_hybrid_system(built.topology, built.system, "resname LIG",
                                                               **common, **emle, emle_precision="single").system,
    }
    contexts = {name: make_context(system, built, args.platform) for name, system in systems.items()}
    for context, integrator in contexts.values():
        integrator.step(10)  # warm-up: kernels, TorchScript profiling runs
    wall = {name: [] for name in systems}
    cpu = {name: [] for name in systems}
    for _ in range(args.rounds):
        for name, (context, integrator) in contexts.items():
            context.getState(getEnergy=True)
            start, start_cpu = time.perf_counter(), time.process_time()
            integrator.step(args.steps)
            context.getState(getEnergy=True)
            wall[name].append(1000 * (time.perf_counter() - start) / args.steps)
            cpu[name].append(1000 * (time.process_time() - start_cpu) / args.steps)
    ms = {name: statistics.median(values) for name, values in wall.items()}
    ms_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    n_ml = sum(1 for a in built.topology.atoms() if a.residue.name == "LIG")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"system: {args.system}, {built.system.getNumParticles()} atoms, {n_ml} ML atoms, platform "
          f"{args.platform}, {args.precision} precision, embedding cutoff {args.embedding_cutoff} nm, torch threads "
          f"{torch.get_num_threads()}, {args.rounds} rounds x {args.steps} steps (median), load average {load:.1f}")
    for name in systems:
        print(f"  {name:32s} {ms[name]:8.2f} ms/step wall  {ms_cpu[name]:8.2f} ms/step CPU")
    mech, el = "mechanical (ANI-2x)", "electrostatic (ANI-2x + EMLE)"
    print(f"electrostatic / mechanical per step: {ms[el] / ms[mech]:.2f} (wall), {ms_cpu[el] / ms_cpu[mech]:.2f} "
          f"(CPU); EMLE cost {ms[el] - ms[mech]:.2f} ms/step wall, {ms_cpu[el] - ms_cpu[mech]:.2f} ms CPU")
    return ms, ms_cpu


if __name__ == "__main__":
    main()
