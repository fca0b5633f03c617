"""ms per ML/MM step of each published model family: openmm-hybrid vs openmm-ml 1.8's Python callback.

For AIMNet2, MACE and TorchMD-Net (TensorNet) a small randomly initialised model is written in
its published format (openmm_hybrid.testing), and the same file is embedded mechanically into
the same MM System (p-xylene in a TIP3P box, 1280 atoms, PME) twice: by openmm-hybrid
(``create_hybrid_system``: a TorchScript ``TorchModuleForce``) and by openmm-ml 1.8
(``MLPotential(<family>, modelPath=...).createMixedSystem``: a ``PythonForce`` calling the
family's package at every step).  Both run in this one process on the CPU platform with
``LangevinMiddleIntegrator`` (1 fs), interleaved over rounds so that machine noise hits them
alike; the median round is reported, with the ratio openmm-hybrid / openmm-ml.

openmm-ml asks whether a model given by file is long-ranged (``mlLongRange``); these are not.
In a periodic box openmm-ml's AIMNet2 route switches aimnet to its DSF Coulomb, openmm-hybrid
evaluates the region in vacuo (all-pairs Coulomb): the cost per step is what is compared.
openmm-ml's TorchMD-Net route compiles the model with ``torch.compile`` after its first call;
its first timed round is preceded by warm-up steps like every other case.

NequIP and Allegro (``--families nequip,allegro``) need nequip >= 0.7, the version openmm-ml 1.8's
``nequip`` potential reads, which cannot share an environment with mace-torch (e3nn 0.4.4 against
>= 0.5): run them in an environment of their own, with their own ``--out``.  The model is trained for
one epoch (openmm_hybrid.testing.write_compiled_nequip); openmm-hybrid runs its ``nequip-compile
--mode torchscript`` file, openmm-ml the checkpoint it was compiled from (its Python callback runs
nequip's neighbour list and model in every step, periodic like the System).

    python benchmarks/bench_model_families.py [--steps 20] [--rounds 3] [--families aimnet2,mace,tensornet]
    python benchmarks/bench_model_families.py --families nequip,allegro \
        --out benchmarks/results/bench_model_families_nequip.md
"""
import argparse
import importlib.metadata
import platform
import statistics
import tempfile
import time
from pathlib import Path

import openmm_hybrid  # noqa: F401  (imports torch before openmmtorch)
import openmm
import torch
from openmm import unit

from openmm_hybrid import testing
from openmm_hybrid._util import set_quiet
from openmm_hybrid.forces import for_platform
from openmm_hybrid.hybrid import create_hybrid_system
from openmm_hybrid.mm import build_system

REPO = testing.SOURCE_TREE
LIGAND = REPO / "examples" / "t4-lysozyme" / "p-xylene.sdf"
# family: (writer, file name, openmm-ml potential name, openmm-ml createMixedSystem arguments, distributions)
FAMILIES = {
    "aimnet2": ("write_random_aimnet2", "aimnet2_small.pt", "aimnet", {}, ["aimnet"]),
    "mace": ("write_random_mace", "small.model", "mace", {"precision": "single", "mlLongRange": False},
             ["mace-torch", "e3nn"]),
    "tensornet": ("write_random_tensornet", "small.ckpt", "torchmdnet", {"mlLongRange": False}, ["torchmd-net"]),
    "nequip": ("write_compiled_nequip", "nequip", "nequip", {"mlLongRange": False}, ["nequip", "e3nn"]),
    "allegro": ("write_compiled_nequip", "allegro", "nequip", {"mlLongRange": False},
                ["nequip", "nequip-allegro", "e3nn"]),
}
# openmm-ml's `nequip` potential takes the model's units (angstrom, eV) at construction
POTENTIAL_ARGUMENTS = {"nequip": {"lengthScale": 0.1, "energyScale": 96.48533212331002}}


def model_files(family, folder):
    """(the file openmm-hybrid loads, the file openmm-ml loads) of a fresh model of ``family``."""
    writer, name, *_ = FAMILIES[family]
    if writer == "write_compiled_nequip":
        # trained in float32, as nequip's models usually are: both routes then run it in its own dtype
        # (openmm-ml's conversion of a float64 model to float32 fails on its float64 inputs)
        return testing.write_compiled_nequip(Path(folder) / family, name, model_dtype="float32")
    path = getattr(testing, writer)(Path(folder) / name)
    return path, path


def openmm_ml_system(name, path, built, ligand, options):
    from openmmml import MLPotential
    return MLPotential(name, modelPath=str(path), **POTENTIAL_ARGUMENTS.get(name, {})).createMixedSystem(
        built.topology, built.system, ligand, **options)


def make_simulation(system, built):
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    cpu = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(for_platform(system, cpu), integrator, cpu)
    context.setPeriodicBoxVectors(*built.topology.getPeriodicBoxVectors())
    context.setPositions(built.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return context, integrator


def ms_per_step(integrator, steps):
    start = time.perf_counter()
    integrator.step(steps)
    return 1000.0 * (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", default=None,
                        help="results file (default benchmarks/results/bench_model_families.md)")
    args = parser.parse_args(argv)
    args.out_name = args.out
    if args.out is None:
        args.out = str(REPO / "benchmarks" / "results" / "bench_model_families.md")
    set_quiet(True)
    built = build_system(ligand=str(LIGAND), solvent="explicit", padding=1.2)
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for family in args.families.split(","):
            _, _, ml_name, ml_options, _ = FAMILIES[family]
            path, reference_path = model_files(family, folder)
            hybrid = create_hybrid_system(built.topology, built.system, ligand, model=str(path),
                                          precision="single").system
            reference = openmm_ml_system(ml_name, reference_path, built, ligand, ml_options)
            runs = {"openmm-hybrid": make_simulation(hybrid, built), "openmm-ml": make_simulation(reference, built)}
            for _, integrator in runs.values():
                integrator.step(5)  # warm-up (torch.compile in openmm-ml's TorchMD-Net route)
            times = {key: [] for key in runs}
            for _ in range(args.rounds):
                for key, (_, integrator) in runs.items():
                    times[key].append(ms_per_step(integrator, args.steps))
            medians = {key: statistics.median(values) for key, values in times.items()}
            rows.append((family, medians["openmm-ml"], medians["openmm-hybrid"],
                         medians["openmm-hybrid"] / medians["openmm-ml"]))
            print(f"{family}: openmm-ml {medians['openmm-ml']:.2f} ms/step, openmm-hybrid "
                  f"{medians['openmm-hybrid']:.2f} ms/step, ratio {rows[-1][3]:.2f}", flush=True)
    write_results(Path(args.out), rows, args, built.system.getNumParticles())


def write_results(out: Path, rows, args, n_atoms):
    distributions = sorted({name for family, *_ in rows for name in FAMILIES[family][4]})
    versions = ", ".join([f"torch {torch.__version__}", f"OpenMM {openmm.__version__}"] +
                         [f"{name} {importlib.metadata.version(name)}" for name in distributions])
    lines = [
        "# bench_model_families.py: published model families, ms per ML/MM step",
        "",
        "`benchmarks/bench_model_families.py` (see its docstring): a small random model of each family",
        "in its published format, embedded mechanically into the same System by openmm-hybrid",
        "(TorchScript in `TorchModuleForce`) and by openmm-ml 1.8 (`PythonForce` calling the package),",
        "same process, CPU platform, `LangevinMiddleIntegrator` 1 fs, float32, interleaved rounds, median.",
        "",
        f"System: p-xylene in TIP3P water, {n_atoms} atoms, PME. Machine: {platform.processor() or platform.machine()},"
        f" {torch.get_num_threads()} torch threads. Versions: {versions}.",
        f"Command: `python benchmarks/bench_model_families.py --steps {args.steps} --rounds {args.rounds} "
        f"--families {args.families}" + (f" --out {args.out_name}`" if args.out_name else "`"),
        "",
        "| family | openmm-ml 1.8 | openmm-hybrid | hybrid / openmm-ml |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {family} | {ml:.2f} ms | {hybrid:.2f} ms | **{ratio:.2f}** |" for family, ml, hybrid, ratio in rows]
    if any(FAMILIES[family][0] == "write_compiled_nequip" for family, *_ in rows):
        lines += ["", "NequIP/Allegro: nequip >= 0.7 (the version openmm-ml 1.8 reads) in an environment without "
                      "mace-torch; the model is trained for one epoch, openmm-hybrid runs its `nequip-compile --mode "
                      "torchscript` file, openmm-ml the checkpoint."]
    lines += ["", "Target: hybrid / openmm-ml <= 0.8 per ML/MM step on the CPU platform.", ""]
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
