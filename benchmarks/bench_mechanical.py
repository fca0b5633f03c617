"""ms/step of pure MM, openmm-ml 1.8 mechanical embedding (ANI-2x) and openmm-hybrid's, side by side.

All three run in this one process, on the same System, positions and platform, with the
same integrator (LangevinMiddle, 1 fs), interleaved over several rounds so that machine
noise hits them alike; the median round is reported.  openmm-ml's ``ani2x`` downloads its
weights through ``torchani.models.ANI2x()``; offline it is handed the same torchani ensemble
that openmm-hybrid loads (``TORCHANI_DATA_DIR``), so both evaluate the same model.

Threads: on the CPU platform openmm-hybrid's force runs torch on at most the platform's
thread count minus one (OpenMM's PME thread keeps a core; see the plugin's kernel).
openmm-ml's PythonForce has no such rule, so it is timed twice, with torch's default thread
count and with one thread, and the faster of the two is the baseline of the ratio.

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
                        help="torch's default intra-op threads (default: torch's own choice)")
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
    default_threads = torch.get_num_threads()
    openmm_ml = openmm_ml_system(built.topology, built.system, ligand)
    # name -> (System, torch threads while it runs)
    variants = {
        "pure MM": (built.system, default_threads),
        f"openmm-ml 1.8 (PythonForce), {default_threads} torch threads": (openmm_ml, default_threads),
        "openmm-hybrid (TorchScript)": (create_hybrid_system(built.topology, built.system, ligand).system,
                                        default_threads),
    }
    if default_threads > 1:
        variants["openmm-ml 1.8 (PythonForce), 1 torch thread"] = (openmm_ml, 1)
    contexts = {name: make_context(system, built, args.platform) for name, (system, _) in variants.items()}
    for name, (context, integrator) in contexts.items():
        torch.set_num_threads(variants[name][1])
        integrator.step(10)  # warm-up: kernels, TorchScript profiling runs
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (context, integrator) in contexts.items():
            torch.set_num_threads(variants[name][1])
            context.getState(getEnergy=True)
            start = time.perf_counter()
            integrator.step(args.steps)
            context.getState(getEnergy=True)  # make sure the work is done
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)
    torch.set_num_threads(default_threads)

    ms = {name: statistics.median(values) for name, values in times.items()}
    mm = ms["pure MM"]
    ours = ms["openmm-hybrid (TorchScript)"]
    baseline = min((name for name in ms if name.startswith("openmm-ml")), key=ms.get)
    print(f"system: {args.system}, {built.system.getNumParticles()} atoms, {len(ligand)} ML atoms (ANI-2x), "
          f"platform {args.platform}, torch threads {default_threads}, "
          f"{args.rounds} rounds x {args.steps} steps (median)")
    for name, value in ms.items():
        print(f"  {name:50s} {value:8.2f} ms/step   ({value / mm:5.2f}x pure MM)")
    print(f"  ML cost per step: openmm-ml (best) {ms[baseline] - mm:.2f} ms, openmm-hybrid {ours - mm:.2f} ms")
    print(f"openmm-hybrid / openmm-ml (best: {baseline}) time per ML/MM step: "
          f"{ours / ms[baseline]:.3f}  (target <= 0.85)")
    return ms


if __name__ == "__main__":
    main()
