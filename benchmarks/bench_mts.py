"""Multiple-time-step ML/MM: stability and speed against single-step dynamics, in one process.

A drug-like ligand (default ibuprofen, neutral, from SMILES; GAFF2/AM1-BCC as its MM
description, ANI-2x as ML) in a TIP3P box with PME, mechanically embedded with
``mts_ready=True``.  After a shared Langevin equilibration:

stability
    Langevin dynamics at 300 K, single step at the inner step (``LangevinMiddleIntegrator``,
    two replicas with different seeds: their difference is the statistical noise floor), single
    step at 2 fs (does one need MTS at all?) and BAOAB-RESPA with outer steps of 2, 3 and 4 fs.  From frames every ``--frame-fs``:
    the ligand's rotatable-bond torsions (histograms, 36 bins, Jensen-Shannon divergence in
    bits against replica 1) and its ML potential energy E_ML(ligand) (mean, std, two-sample
    Kolmogorov-Smirnov statistic), and the ligand's kinetic temperature (MTS heating shows
    there first).  Frames are correlated, so KS p-values would be meaningless; compare with
    the replica-vs-replica values instead.
nve
    Velocity-Verlet RESPA from the equilibrated state, PME tolerance 1e-5, for outer 1, 2, 3 and
    4 fs at ``--nve-inner-fs``, plus single-step velocity Verlet at the inner step, 1 and 2 fs:
    total-energy drift (kT/ns/dof, linear fit) and fluctuation; blow-ups are reported as such.
speed
    Wall and CPU time per simulated ps, single step at the inner step (plain ML/MM System) vs
    MTS with 2, 4 and 8 substeps (outer step = N inner steps), interleaved rounds, median; the
    fraction of ML evaluations saved (counted, with a TorchScript force in the slow group that
    counts its own calls) against the real speed-up, and the speed-up Amdahl's law predicts from
    the measured cost of one fast-group and one slow-group force evaluation.

The inner step (default 0.5 fs, ligand X-H bonds flexible) is the single-step reference's step;
MTS with 2, 4, 8 substeps then has outer steps of 1, 2, 4 fs.

Example (the numbers in benchmarks/results/bench_mts.md)::

    nice python benchmarks/bench_mts.py --out bench_mts.json

Small settings to check the script: ``--stability-ps 0.2 --nve-ps 0.1 --speed-ps 0.05 --rounds 1``.

On a machine without the builder's dependencies (RDKit, AmberTools), e.g. a GPU machine:
``--save-systems DIR`` here writes the equilibrated plain and MTS-ready Systems and the state
(gzipped XML) and stops; ``--load-systems DIR --parts speed --platform CUDA`` there times them.
"""
import argparse
import gzip
import json
import os
import platform as platform_module
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch  # noqa: F401  (before openmm's TorchForce plugin)
import numpy as np
import openmm
from openmm import unit

from openmm_hybrid import forces as ml_force  # noqa: E402
from openmm_hybrid.analysis.energy_conservation import measure_drift, tighten_pme  # noqa: E402
from openmm_hybrid.errors import SimulationError  # noqa: E402
from openmm_hybrid.testing import EvaluationCounter  # noqa: E402
from openmm_hybrid.forces.serialization import load_system  # noqa: E402
from openmm_hybrid.hybrid import create_hybrid_system  # noqa: E402
from openmm_hybrid.dynamics.integrators import create_mts_langevin_integrator, create_mts_verlet_integrator  # noqa: E402
from openmm_hybrid.dynamics.simulation import degrees_of_freedom  # noqa: E402

IBUPROFEN = "CC(C)Cc1ccc(cc1)C(C)C(=O)O"
KB = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
COUNTER_NAME = "EvaluationCounter"


def log(message):
    print(f"[bench_mts {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- set-up ----------------------------------------------------------------------------------------------

def rotatable_torsions(mol):
    """One dihedral (4 atom indices) per rotatable bond, preferring heavy end atoms."""
    from rdkit import Chem
    pattern = Chem.MolFromSmarts("[!$([NH])&!$([NH2])&!$(C(F)(F)F)&!D1&!$(*#*)]-&!@[!D1&!$(*#*)]")
    torsions = []
    for b, c in mol.GetSubstructMatches(pattern):
        ends = []
        for centre, other in ((b, c), (c, b)):
            neighbours = [n for n in mol.GetAtomWithIdx(centre).GetNeighbors() if n.GetIdx() != other]
            neighbours.sort(key=lambda n: (n.GetAtomicNum() == 1, n.GetIdx()))
            ends.append(neighbours[0].GetIdx())
        torsions.append((ends[0], b, c, ends[1]))
    return torsions


def dihedrals(xyz, torsions):
    """Dihedral angles (degrees) of frames ``xyz`` (F, N, 3) for the given index quadruples."""
    out = []
    for a, b, c, d in torsions:
        b0, b1, b2 = xyz[:, a] - xyz[:, b], xyz[:, c] - xyz[:, b], xyz[:, d] - xyz[:, c]
        b1n = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
        v = b0 - np.sum(b0 * b1n, axis=1, keepdims=True) * b1n
        w = b2 - np.sum(b2 * b1n, axis=1, keepdims=True) * b1n
        x = np.sum(v * w, axis=1)
        y = np.sum(np.cross(b1n, v) * w, axis=1)
        out.append(np.degrees(np.arctan2(y, x)))
    return np.array(out).T  # (F, n_torsions)


def js_divergence(a, b, bins=36):
    """Jensen-Shannon divergence (bits) between two samples of angles in degrees."""
    edges = np.linspace(-180, 180, bins + 1)
    p = np.histogram(a, edges)[0] + 1e-12
    q = np.histogram(b, edges)[0] + 1e-12
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def make_context(system, integrator, platform, state=None, box=None, positions=None):
    platform = openmm.Platform.getPlatformByName(platform)
    context = openmm.Context(ml_force.for_platform(system, platform), integrator, platform)
    if state is not None:
        context.setState(state)
    else:
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
    return context


# ---- parts -----------------------------------------------------------------------------------------------

def stability(args, built, plain, mts, state, ligand, torsions, ml_module):
    inner = args.inner_fs
    runs = [("single step, seed 1", None, 1), ("single step, seed 2", None, 2)]
    runs += [(f"single step {dt:g} fs", -dt, 1) for dt in args.stability_single_fs]
    for outer in args.stability_outer_fs:
        n = int(round(outer / inner))
        runs.append((f"MTS outer {outer:g} fs ({n} x {inner:g} fs)", n, 1))
    results = {}
    masses = np.array([built.system.getParticleMass(i).value_in_unit(unit.dalton) for i in ligand])
    for label, substeps, seed in runs:
        if substeps is None or substeps < 0:  # single step at the inner step, or at -substeps fs
            system = plain.system
            outer = inner if substeps is None else -substeps
            integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, args.friction / unit.picosecond,
                                                         outer * unit.femtosecond)
            integrator.setRandomNumberSeed(seed)
            substeps = None
        else:
            system = mts.system
            outer = inner * substeps
            integrator = create_mts_langevin_integrator(outer, substeps, mts.force_groups, 300,
                                                        args.friction, system=system, seed=seed)
        context = make_context(system, integrator, args.platform, state)
        context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
        stride = max(1, int(round(args.frame_fs / outer)))
        n_frames = int(round(args.stability_ps * 1000 / (stride * outer)))
        frames, temperatures, potentials = [], [], []
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            for i in range(n_frames):
                integrator.step(stride)
                s = context.getState(getPositions=True, getVelocities=True, getEnergy=True, enforcePeriodicBox=False)
                potentials.append(s.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
                if not np.isfinite(potentials[-1]):
                    raise openmm.OpenMMException("energy is NaN")
                xyz = s.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[ligand]
                v = s.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)[ligand]
                frames.append(xyz)
                temperatures.append(float(np.sum(masses[:, None] * v * v) / (3 * len(ligand) * KB)))
                if (i + 1) % max(1, n_frames // 5) == 0:
                    log(f"stability, {label}: {i + 1}/{n_frames} frames, T_lig {np.mean(temperatures):.1f} K")
        except openmm.OpenMMException as exc:
            failed = f"NaN after {len(frames) * stride * outer / 1000:.3f} ps ({str(exc)[:40]})"
            log(f"stability, {label}: blew up: {failed}")
            results[label] = {"outer_fs": outer, "substeps": substeps or 1, "seed": seed, "unstable": failed}
            del context
            continue
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        frames = np.array(frames)
        with torch.no_grad():
            e_ml = np.array([float(ml_module(torch.tensor(x, dtype=torch.float64))) for x in frames])
        results[label] = {"outer_fs": outer, "substeps": substeps or 1, "seed": seed, "frames": len(frames),
                          "wall_s": wall, "cpu_s": cpu, "torsions_deg": dihedrals(frames, torsions),
                          "e_ml": e_ml, "ligand_temperature_k": float(np.mean(temperatures)),
                          "total_potential_mean": float(np.mean(potentials))}
        del context
    reference = results[runs[0][0]]
    summary = {}
    for label, r in results.items():
        if "unstable" in r:
            summary[label] = r
            continue
        entry = {k: r[k] for k in ("outer_fs", "substeps", "seed", "frames", "wall_s", "cpu_s",
                                   "ligand_temperature_k", "total_potential_mean")}
        entry["e_ml_mean"] = float(np.mean(r["e_ml"]))
        entry["e_ml_std"] = float(np.std(r["e_ml"]))
        if r is not reference:
            entry["e_ml_ks_vs_seed1"] = ks_statistic(r["e_ml"], reference["e_ml"])
            js = [js_divergence(r["torsions_deg"][:, k], reference["torsions_deg"][:, k])
                  for k in range(len(torsions))]
            entry["torsion_js_bits_vs_seed1"] = js
            entry["torsion_js_bits_mean"] = float(np.mean(js))
        summary[label] = entry
    return summary


def nve(args, built, mts_nve, state):
    inner = args.nve_inner_fs
    settings = [("velocity Verlet", dt, 1) for dt in [inner] + [d for d in args.single_fs if d > inner]] + \
        [("RESPA", outer, int(round(outer / inner))) for outer in args.nve_outer_fs if outer > inner]
    results = []
    for name, outer, substeps in settings:
        integrator = create_mts_verlet_integrator(outer, substeps, mts_nve.force_groups, system=mts_nve.system,
                                                  constraint_tolerance=1e-8)
        steps = int(round(args.nve_ps * 1000 / outer))
        entry = {"integrator": name, "outer_fs": outer, "substeps": substeps, "inner_fs": outer / substeps,
                 "ps": args.nve_ps}
        try:
            # 10 fs before the first sample (see measure_drift)
            result = measure_drift(mts_nve.system, state, integrator, steps, max(1, steps // 200), 300.0,
                                   platform=args.platform, settle=max(1, int(round(10 / outer))))
        except (openmm.OpenMMException, SimulationError) as exc:
            entry.update({"unstable": str(exc)[:80], "n_dof": degrees_of_freedom(mts_nve.system)})
            log(f"NVE {name} outer {outer:g} fs x {substeps}: blew up ({str(exc)[:60]})")
        else:
            entry.update({"drift_kT_per_ns_per_dof": result.drift, "fluctuation_kjmol": result.fluctuation,
                          "n_dof": result.n_dof})
            log(f"NVE {name} outer {outer:g} fs x {substeps}: drift {result.drift:+.4f} kT/ns/dof, "
                f"rms {result.fluctuation:.3f} kJ/mol")
        results.append(entry)
    return results


def speed(args, plain, mts, state):
    inner = args.inner_fs
    schemes = [("single step", "single", inner)] + \
        [(f"single step {dt:g} fs", "single", dt) for dt in args.single_fs if dt > inner] + \
        [(f"MTS {n} substeps", "mts", n) for n in (2, 4, 8)] + \
        [("openmm.MTSLangevinIntegrator 4 substeps", "openmm", 4)]
    contexts = {}
    for label, kind, n in schemes:
        if kind == "openmm":
            integrator = openmm.MTSLangevinIntegrator(300, args.friction, n * inner / 1000,
                                                      [(mts.force_groups["slow"], 1), (mts.force_groups["fast"][0], n)])
            contexts[label] = (make_context(mts.system, integrator, args.platform, state), integrator, n * inner)
        elif kind == "single":
            integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, args.friction / unit.picosecond,
                                                         n * unit.femtosecond)
            contexts[label] = (make_context(plain.system, integrator, args.platform, state), integrator, n)
        else:
            integrator = create_mts_langevin_integrator(n * inner, n, mts.force_groups, 300, args.friction,
                                                        system=mts.system)
            contexts[label] = (make_context(mts.system, integrator, args.platform, state), integrator, n * inner)
    for context, integrator, _ in contexts.values():
        integrator.step(10)  # warm-up (TorchScript profiling and optimisation runs, neighbour lists)
    wall = {label: [] for label in contexts}
    cpu = {label: [] for label in contexts}
    unstable = set()
    for r in range(args.rounds):
        for label, (context, integrator, outer) in contexts.items():
            if label in unstable:
                continue
            steps = max(1, int(round(args.speed_ps * 1000 / outer)))
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                integrator.step(steps)
                context.getState(getPositions=True)  # wait for the platform to finish
            except openmm.OpenMMException:
                log(f"speed, {label}: blew up")
                unstable.add(label)
                continue
            ps = steps * outer / 1000
            wall[label].append((time.perf_counter() - t0) / ps)
            cpu[label].append((time.process_time() - c0) / ps)
        log(f"speed round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.1f} s/ps" for k, v in wall.items()
                                                                 if v))
    # cost of one force evaluation of each group, on the MTS context
    context = contexts["MTS 2 substeps"][0]
    fast, slow = set(mts.force_groups["fast"]), {mts.force_groups["slow"]}
    costs = {}
    for name, groups in (("fast", fast), ("slow", slow), ("all", fast | slow)):
        context.getState(getForces=True, groups=groups)
        samples = []
        for _ in range(max(5, args.rounds * 3)):
            t0 = time.perf_counter()
            context.getState(getForces=True, groups=groups)
            samples.append(time.perf_counter() - t0)
        costs[name] = statistics.median(samples) * 1000
    single = statistics.median(wall["single step"])
    result = {"rounds": args.rounds, "ps_per_round": args.speed_ps, "inner_fs": inner,
              "force_evaluation_ms": costs, "schemes": {}}
    for label, (_, _, outer) in contexts.items():
        n = int(round(outer / inner))
        if label in unstable:
            result["schemes"][label] = {"outer_fs": outer, "substeps": n, "unstable": True}
            continue
        t = statistics.median(wall[label])
        # single step: one evaluation of everything per inner step; MTS: n fast (OpenMM's own:
        # n + 1) and one slow evaluation per n inner steps
        fast_per_inner = (n + 1) / n if label.startswith("openmm.") else 1.0
        if label.startswith("single"):  # every force every step, n inner steps' worth at a time
            predicted = float(n)
        else:
            predicted = costs["all"] / (fast_per_inner * costs["fast"] + costs["slow"] / n)
        result["schemes"][label] = {
            "outer_fs": outer, "substeps": n, "wall_s_per_ps": t, "cpu_s_per_ps": statistics.median(cpu[label]),
            "speedup_wall": single / t, "ml_evaluations_saved": 1 - 1 / n,  # vs the single step at inner
            "amdahl_predicted_speedup": predicted}
    result["evaluations_counted"] = count_evaluations(args, mts, state)
    return result


def count_evaluations(args, mts, state):
    """Force evaluations per outer step of each group, counted by TorchScript forces (one in the
    fast group, one in the slow group) whose energy is their own number of calls; the rest of a
    group's energy is taken off with a Context of the System without counters at the same
    positions.  For this implementation and for ``openmm.MTSLangevinIntegrator``."""
    groups = {"fast": mts.force_groups["fast"][0], "slow": mts.force_groups["slow"]}
    reference = make_context(mts.system, openmm.VerletIntegrator(0.001), args.platform, state)
    ml_force.MODULE_FORCE_NAMES.add(COUNTER_NAME)
    indices = [mts.system.addForce(ml_force.create_module_force(torch.jit.script(EvaluationCounter()),
                                                                periodic=True, force_group=g, name=COUNTER_NAME))
               for g in groups.values()]

    def calls(context, group):
        s = context.getState(getEnergy=True, getPositions=True, groups={group})
        reference.setPositions(s.getPositions())
        rest = reference.getState(getEnergy=True, groups={group}).getPotentialEnergy()
        return (s.getPotentialEnergy() - rest).value_in_unit(unit.kilojoule_per_mole)

    counts = {}
    steps = 50
    try:
        for n in (1, 2, 4, 8):
            for name in ("openmm-hybrid RESPAIntegrator", "openmm.MTSLangevinIntegrator"):
                if name.startswith("openmm-hybrid"):
                    integrator = create_mts_langevin_integrator(n * args.inner_fs, n, mts.force_groups, 300,
                                                                args.friction)
                else:
                    integrator = openmm.MTSLangevinIntegrator(300, args.friction, n * args.inner_fs / 1000,
                                                              [(groups["slow"], 1), (groups["fast"], n)])
                context = make_context(mts.system, integrator, args.platform, state)
                integrator.step(1)
                before = {k: calls(context, g) for k, g in groups.items()}
                integrator.step(steps)
                after = {k: calls(context, g) for k, g in groups.items()}
                # each read evaluates its counter once more
                counts[f"{name}, {n} substeps"] = {f"{k}_evaluations_per_outer_step": round((after[k] - before[k] - 1)
                                                                                          / steps, 3)
                                                   for k in groups}
                del context
    finally:
        for index in sorted(indices, reverse=True):
            mts.system.removeForce(index)
    return counts


def floats(text):
    return [float(x) for x in text.split(",") if x]


# ---- main ------------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smiles", default=IBUPROFEN, help="ligand (default: ibuprofen, neutral)")
    parser.add_argument("--padding", type=float, default=1.0, help="water padding, nm")
    parser.add_argument("--hmr", type=float, default=3.0,
                        help="hydrogen mass (amu) for repartitioning, ligand included (default 3; 0: none)")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--inner-fs", type=float, default=0.5, help="inner (and single-step) time step, fs")
    parser.add_argument("--stability-outer-fs", type=floats, default=[2.0, 3.0, 4.0],
                        help="outer steps of the MTS stability runs, fs")
    parser.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps")
    parser.add_argument("--equilibration-ps", type=float, default=2.0)
    parser.add_argument("--stability-ps", type=float, default=10.0, help="length of each Langevin run, ps")
    parser.add_argument("--frame-fs", type=float, default=20.0, help="frame interval, fs")
    parser.add_argument("--nve-ps", type=float, default=1.0)
    parser.add_argument("--nve-outer-fs", type=floats, default=[1.0, 2.0, 3.0, 4.0],
                        help="outer steps of the NVE RESPA runs, fs")
    parser.add_argument("--single-fs", type=floats, default=[1.0, 2.0],
                        help="single-step time steps besides the inner step for the NVE and speed comparisons, fs")
    parser.add_argument("--stability-single-fs", type=floats, default=[2.0],
                        help="single-step Langevin runs at these steps in the stability comparison, fs")
    parser.add_argument("--nve-inner-fs", type=float, default=0.5)
    parser.add_argument("--speed-ps", type=float, default=0.2, help="simulated ps per timing round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="stability,nve,speed")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    parser.add_argument("--save-systems", default=None, metavar="DIR",
                        help="write the equilibrated Systems and state to DIR and stop")
    parser.add_argument("--load-systems", default=None, metavar="DIR",
                        help="time the Systems saved with --save-systems instead of building (speed part only)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    t_start, c_start = time.perf_counter(), time.process_time()
    if args.load_systems:
        if parts != {"speed"}:
            parser.error("--load-systems times saved Systems: use it with --parts speed")
        plain, mts, state, saved = load_saved_systems(Path(args.load_systems))
        log(f"{mts.system.getNumParticles()} atoms (saved in {args.load_systems}), platform {args.platform}")
        results = {"settings": {**vars(args), **saved, "platform_version": openmm.Platform.getOpenMMVersion(),
                                "machine": platform_module.processor() or platform_module.machine(),
                                "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()}}
        results["speed"] = speed(args, plain, mts, state)
        return finish(args, results, t_start, c_start)
    from openmm_hybrid.mm import build_system  # the builder's dependencies (RDKit) only here
    from openmm_hybrid.mm.ligand import load_ligand
    ligand_mol = load_ligand(args.smiles)
    built = build_system(ligand=ligand_mol, solvent="explicit", padding=args.padding * unit.nanometer,
                         hydrogen_mass=args.hmr or None)
    box = built.topology.getPeriodicBoxVectors()
    plain = create_hybrid_system(built.topology, built.system, "resname LIG")
    mts = create_hybrid_system(built.topology, built.system, "resname LIG", mts_ready=True)
    ligand = list(plain.ml_atoms)
    assert ligand == list(range(ligand_mol.n_atoms))  # ligand first, in RDKit order
    torsions = rotatable_torsions(ligand_mol.mol)
    ml_module = ml_force.create_region_module(plain.model, range(len(ligand)),
                                              [a.GetAtomicNum() for a in ligand_mol.mol.GetAtoms()],
                                              total_charge=0.0, periodic=False)
    log(f"{built.system.getNumParticles()} atoms, ligand {len(ligand)} atoms, {len(torsions)} rotatable torsions, "
        f"platform {args.platform}, load {os.getloadavg()}")

    # shared equilibration: minimise the MM System (L-BFGS on the ML/MM one needs many more force
    # evaluations), then single-step Langevin on the ML/MM System at the inner step
    context = make_context(built.system, openmm.VerletIntegrator(0.001), args.platform, box=box,
                           positions=built.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
    positions = context.getState(getPositions=True).getPositions()
    del context
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond, args.inner_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(7)
    context = make_context(plain.system, integrator, args.platform, box=box, positions=positions)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 7)
    integrator.step(int(round(args.equilibration_ps * 1000 / args.inner_fs)))
    state = context.getState(getPositions=True, getVelocities=True, enforcePeriodicBox=False)
    del context
    log("equilibrated")
    if args.save_systems:
        save_systems(Path(args.save_systems), plain, mts, state,
                     {"smiles": args.smiles, "hmr": args.hmr, "padding": args.padding,
                      "atoms": built.system.getNumParticles(), "ligand_atoms": len(ligand)})
        return None

    results = {"settings": {**vars(args), "atoms": built.system.getNumParticles(), "ligand_atoms": len(ligand),
                            "torsions": [list(map(int, t)) for t in torsions], "platform_version":
                            openmm.Platform.getOpenMMVersion(), "machine": platform_module.processor() or
                            platform_module.machine(), "cpu_count": os.cpu_count(),
                            "load_average_start": os.getloadavg()}}
    if "stability" in parts:
        results["stability"] = stability(args, built, plain, mts, state, ligand, torsions, ml_module)
    if "nve" in parts:
        mts_nve = create_hybrid_system(built.topology, built.system, "resname LIG", mts_ready=True)
        tighten_pme(mts_nve.system)
        results["nve"] = nve(args, built, mts_nve, state)
    if "speed" in parts:
        results["speed"] = speed(args, plain, mts, state)
    return finish(args, results, t_start, c_start)


def save_systems(directory: Path, plain, mts, state, description: dict):
    """The plain and MTS-ready Systems, the equilibrated state (gzipped XML) and what they are."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, obj in (("plain.xml.gz", plain.system), ("mts.xml.gz", mts.system), ("state.xml.gz", state)):
        with gzip.open(directory / name, "wt") as f:
            f.write(openmm.XmlSerializer.serialize(obj))
    (directory / "saved.json").write_text(json.dumps({**description, "force_groups": mts.force_groups}, indent=2))
    log(f"saved the Systems and state in {directory}")


def load_saved_systems(directory: Path):
    saved = json.loads((directory / "saved.json").read_text())
    groups = saved.pop("force_groups")
    plain = SimpleNamespace(system=load_system(gzip.open(directory / "plain.xml.gz", "rt").read()))
    mts = SimpleNamespace(system=load_system(gzip.open(directory / "mts.xml.gz", "rt").read()), force_groups=groups)
    state = openmm.XmlSerializer.deserialize(gzip.open(directory / "state.xml.gz", "rt").read())
    return plain, mts, state, saved


def finish(args, results, t_start, c_start):
    results["settings"]["load_average_end"] = os.getloadavg()
    results["settings"]["total_wall_s"] = time.perf_counter() - t_start
    results["settings"]["total_cpu_s"] = time.process_time() - c_start
    report(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


def report(results):
    s = results["settings"]
    print(f"\n{s['atoms']} atoms ({s['ligand_atoms']}-atom ligand {s['smiles']}), platform {s['platform']}, "
          f"HMR {s['hmr'] or 'none'} amu, inner step {s['inner_fs']} fs, load average {s['load_average_start'][0]:.1f} -> "
          f"{s['load_average_end'][0]:.1f}, total {s['total_wall_s']:.0f} s wall / {s['total_cpu_s']:.0f} s CPU")
    if "stability" in results:
        print(f"\nStability: Langevin 300 K, friction {s['friction']}/ps, {s['stability_ps']} ps per run, "
              f"frames every {s['frame_fs']} fs")
        print("| run | frames | ligand T (K) | E_ML mean (kJ/mol) | E_ML std | KS(E_ML) vs seed 1 | "
              "torsion JS vs seed 1 (bits, mean) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, r in results["stability"].items():
            if "unstable" in r:
                print(f"| {label} | unstable: {r['unstable']} | | | | | |")
                continue
            print(f"| {label} | {r['frames']} | {r['ligand_temperature_k']:.1f} | {r['e_ml_mean']:.1f} | "
                  f"{r['e_ml_std']:.1f} | {r.get('e_ml_ks_vs_seed1', float('nan')):.3f} | "
                  f"{r.get('torsion_js_bits_mean', float('nan')):.4f} |")
    if "nve" in results:
        print(f"\nNVE (PME tolerance 1e-5, {s['nve_ps']} ps each)")
        print("| integrator | outer (fs) | substeps | inner (fs) | drift (kT/ns/dof) | fluctuation (kJ/mol) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in results["nve"]:
            if "unstable" in r:
                print(f"| {r['integrator']} | {r['outer_fs']:g} | {r['substeps']} | {r['inner_fs']:g} | "
                      f"unstable: {r['unstable']} | |")
                continue
            print(f"| {r['integrator']} | {r['outer_fs']:g} | {r['substeps']} | {r['inner_fs']:g} | "
                  f"{r['drift_kT_per_ns_per_dof']:+.4f} | {r['fluctuation_kjmol']:.3f} |")
    if "speed" in results:
        sp = results["speed"]
        c = sp["force_evaluation_ms"]
        print(f"\nSpeed ({sp['rounds']} interleaved rounds of {sp['ps_per_round']} ps, median); one force evaluation: "
              f"fast groups {c['fast']:.1f} ms, slow group {c['slow']:.1f} ms, all {c['all']:.1f} ms")
        print("| scheme | outer (fs) | wall s/ps | CPU s/ps | speed-up | ML evaluations saved | "
              "Amdahl prediction |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, r in sp["schemes"].items():
            if r.get("unstable"):
                print(f"| {label} | {r['outer_fs']:g} | unstable (NaN) | | | | |")
                continue
            print(f"| {label} | {r['outer_fs']:g} | {r['wall_s_per_ps']:.2f} | {r['cpu_s_per_ps']:.2f} | "
                  f"{r['speedup_wall']:.2f} | {100 * r['ml_evaluations_saved']:.0f}% | "
                  f"{r['amdahl_predicted_speedup']:.2f} |")
        print("\nForce evaluations per outer step (counted, 50 steps in one step() call)")
        print("| integrator | fast | slow |")
        print("| --- | --- | --- |")
        for label, c in sp.get("evaluations_counted", {}).items():
            print(f"| {label} | {c['fast_evaluations_per_outer_step']:.2f} | "
                  f"{c['slow_evaluations_per_outer_step']:.2f} |")


if __name__ == "__main__":
    main()
