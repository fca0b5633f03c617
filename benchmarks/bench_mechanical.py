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

On a machine without the builder's dependencies (a GPU machine), ``--save-systems DIR`` here
writes the MM and ML/MM Systems and positions (gzipped XML) and stops, and
``--load-systems DIR --platform CUDA`` there times them (openmm-ml only where it and the ANI-2x
weights are installed) and reports how far the platform's ML/MM energy and forces are from
the CPU platform's at the same positions.
"""
import argparse
import gzip
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import openmm_hybrid  # noqa: F401  (imports torch before openmmtorch)
import numpy as np
import openmm
import torch
from openmm import unit

from openmm_hybrid import forces as ml_force
from openmm_hybrid._util import set_quiet
from openmm_hybrid.forces.serialization import load_system
from openmm_hybrid.testing import SOURCE_TREE, use_shared_models

use_shared_models()
REPO = SOURCE_TREE

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
    platform = openmm.Platform.getPlatformByName(platform)
    context = openmm.Context(ml_force.for_platform(system, platform), integrator, platform)
    if built.box is not None:
        context.setPeriodicBoxVectors(*built.box)
    context.setPositions(built.positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return context, integrator


def energy_and_forces(system, built, platform):
    context = make_context(system, built, platform)[0]
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def build(args):
    """MM System, ML/MM System, positions, box and ML atoms of the chosen test system."""
    from openmm_hybrid.mm import build_system
    from openmm_hybrid.hybrid import create_hybrid_system
    if args.system == "complex":
        built = build_system(protein=str(EXAMPLE / "receptor.pdb"), ligand=str(EXAMPLE / "p-xylene.sdf"),
                             solvent="explicit", padding=1.0, box_shape="dodecahedron")
    else:
        built = build_system(ligand=str(EXAMPLE / "p-xylene.sdf"), solvent="explicit", padding=1.2)
    ligand = [a.index for a in built.topology.atoms() if a.residue.name == "LIG"]
    hybrid = create_hybrid_system(built.topology, built.system, ligand).system
    return SimpleNamespace(mm=built.system, hybrid=hybrid, positions=built.positions,
                           box=built.topology.getPeriodicBoxVectors(), ligand=ligand, topology=built.topology)


def save(directory: Path, systems):
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("mm", "hybrid"):
        with gzip.open(directory / f"{name}.xml.gz", "wt") as f:
            f.write(openmm.XmlSerializer.serialize(getattr(systems, name)))
    xyz = systems.positions.value_in_unit(unit.nanometer)
    box = [list(v.value_in_unit(unit.nanometer)) for v in systems.box] if systems.box is not None else None
    (directory / "saved.json").write_text(json.dumps({"positions_nm": [list(map(float, p)) for p in xyz],
                                                      "box_nm": box, "ligand": systems.ligand}))


def load(directory: Path):
    saved = json.loads((directory / "saved.json").read_text())
    box = [openmm.Vec3(*v) * unit.nanometer for v in saved["box_nm"]] if saved["box_nm"] else None
    return SimpleNamespace(mm=load_system(gzip.open(directory / "mm.xml.gz", "rt").read()),
                           hybrid=load_system(gzip.open(directory / "hybrid.xml.gz", "rt").read()),
                           positions=np.array(saved["positions_nm"]) * unit.nanometer, box=box,
                           ligand=saved["ligand"], topology=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["complex", "ligand-water"], default="complex")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch's default intra-op threads (default: torch's own choice)")
    parser.add_argument("--save-systems", default=None, metavar="DIR", help="write the Systems to DIR and stop")
    parser.add_argument("--load-systems", default=None, metavar="DIR",
                        help="time the Systems saved with --save-systems instead of building them")
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    set_quiet(True)

    built = load(Path(args.load_systems)) if args.load_systems else build(args)
    if args.save_systems:
        save(Path(args.save_systems), built)
        return None
    ligand = built.ligand
    default_threads = torch.get_num_threads()
    # name -> (System, torch threads while it runs)
    variants = {
        "pure MM": (built.mm, default_threads),
        "openmm-hybrid (TorchScript)": (built.hybrid, default_threads),
    }
    try:
        if built.topology is None:
            raise RuntimeError("the saved Systems carry no topology")
        openmm_ml = openmm_ml_system(built.topology, built.mm, ligand)
    except Exception as exc:  # e.g. on a GPU machine without openmm-ml or the ANI-2x weights
        print(f"openmm-ml not timed: {type(exc).__name__}: {exc}")
        openmm_ml = None
    if openmm_ml is not None:
        variants[f"openmm-ml 1.8 (PythonForce), {default_threads} torch threads"] = (openmm_ml, default_threads)
        if default_threads > 1:
            variants["openmm-ml 1.8 (PythonForce), 1 torch thread"] = (openmm_ml, 1)
    if args.platform != "CPU":
        e_platform, f_platform = energy_and_forces(built.hybrid, built, args.platform)
        e_cpu, f_cpu = energy_and_forces(built.hybrid, built, "CPU")
        df = np.abs(f_platform - f_cpu)
        print(f"ML/MM System on {args.platform} vs CPU at the same positions: energy {e_platform:.4f} vs {e_cpu:.4f} "
              f"kJ/mol (difference {e_platform - e_cpu:+.2e}); largest force difference {df.max():.2e} kJ/mol/nm "
              f"(ML atoms {df[ligand].max():.2e}; largest force {np.abs(f_cpu).max():.1f})")
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
    print(f"system: {args.system}, {built.mm.getNumParticles()} atoms, {len(ligand)} ML atoms (ANI-2x), "
          f"platform {args.platform}, torch threads {default_threads}, "
          f"{args.rounds} rounds x {args.steps} steps (median)")
    for name, value in ms.items():
        print(f"  {name:50s} {value:8.2f} ms/step   ({value / mm:5.2f}x pure MM)")
    baselines = [name for name in ms if name.startswith("openmm-ml")]
    if baselines:
        baseline = min(baselines, key=ms.get)
        print(f"  ML cost per step: openmm-ml (best) {ms[baseline] - mm:.2f} ms, openmm-hybrid {ours - mm:.2f} ms")
        print(f"openmm-hybrid / openmm-ml (best: {baseline}) time per ML/MM step: "
              f"{ours / ms[baseline]:.3f}  (target <= 0.85)")
    else:
        print(f"  ML cost per step: openmm-hybrid {ours - mm:.2f} ms")
    return ms


if __name__ == "__main__":
    main()
