"""ms/step of pure MM, openmm-ml 1.8 mechanical embedding (ANI-2x) and openmm-hybrid's, side by side.

All three run in this one process, on the same System, positions and platform, with the
same integrator (LangevinMiddle, 1 fs), interleaved over several rounds so that machine
noise hits them alike; the median round is reported.  openmm-ml's ``ani2x`` downloads its
weights through ``torchani.models.ANI2x()``; offline it is handed the same torchani ensemble
that openmm-hybrid loads (``TORCHANI_DATA_DIR``), so both evaluate the same model.

    python benchmarks/bench_mechanical.py                       # bundled T4 lysozyme + p-xylene in water
    python benchmarks/bench_mechanical.py --system ligand-water # p-xylene in a small water box
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_shared = REPO.parent / "shared" / "models" / "torchani"
if not os.environ.get("TORCHANI_DATA_DIR") and _shared.is_dir():
    os.environ["TORCHANI_DATA_DIR"] = str(_shared)

import openmm_hybrid  # noqa: E402,F401  (imports torch before openmmtorch)
import openmm  # noqa: E402
import torch  # noqa: E402
from openmm import unit  # noqa: E402

from openmm_hybrid._util import set_quiet  # noqa: E402
from openmm_hybrid.builder import build_system  # noqa: E402
from openmm_hybrid.hybrid import create_hybrid_system  # noqa: E402

EXAMPLE = REPO / "examples" / "t4-lysozyme"


def openmm_ml_system(topology, system, atoms):
    import torchani
    from openmmml import MLPotential
    from openmm_hybrid.models.ani import load_torchani_ani2x
    original = torchani.models.ANI2x
    torchani.models.ANI2x = lambda **kw: load_torchani_ani2x().to(torch.float32)
    try:
        return MLPotential("ani2x").createMixedSystem(topology, system, atoms, embedding="mechanical")
    finally:
        torchani.models.ANI2x = original


def make_context(system, built, platform):
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    if built.topology.getPeriodicBoxVectors() is not None:
        context.setPeriodicBoxVectors(*built.topology.getPeriodicBoxVectors())
    context.setPositions(built.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return context, integrator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["complex", "ligand-water"], default="complex")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads for both ML variants (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    set_quiet(True)

    if args.system == "complex":
        built = build_system(protein=str(EXAMPLE / "receptor.pdb"), ligand=str(EXAMPLE / "p-xylene.sdf"),
                             solvent="explicit", padding=1.0, box_shape="dodecahedron")
    else:
        built = build_system(ligand=str(EXAMPLE / "p-xylene.sdf"), solvent="explicit", padding=1.2)
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    systems = {
        "pure MM": built.system,
        "openmm-ml 1.8 (ANI-2x, PythonForce)": openmm_ml_system(built.topology, built.system, ligand),
        "openmm-hybrid (ANI-2x, TorchScript)": create_hybrid_system(built.topology, built.system, ligand).system,
    }
    contexts = {name: make_context(system, built, args.platform) for name, system in systems.items()}
    for context, integrator in contexts.values():
        integrator.step(10)  # warm-up: kernels, TorchScript profiling runs
    times = {name: [] for name in systems}
    for _ in range(args.rounds):
        for name, (context, integrator) in contexts.items():
            context.getState(getEnergy=True)
            start = time.perf_counter()
            integrator.step(args.steps)
            context.getState(getEnergy=True)  # make sure the work is done
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)

    ms = {name: statistics.median(values) for name, values in times.items()}
    mm, ref, ours = ms.values()
    print(f"system: {args.system}, {built.system.getNumParticles()} atoms, {len(ligand)} ML atoms, "
          f"platform {args.platform}, torch threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds x {args.steps} steps (median)")
    for name, value in ms.items():
        print(f"  {name:40s} {value:8.2f} ms/step   ({value / mm:5.2f}x pure MM)")
    print(f"  ML cost per step: openmm-ml {ref - mm:.2f} ms, openmm-hybrid {ours - mm:.2f} ms")
    print(f"openmm-hybrid / openmm-ml time per ML/MM step: {ours / ref:.3f}  (target <= 0.85)")
    return ms


if __name__ == "__main__":
    main()
