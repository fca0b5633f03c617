"""fwd+bwd time of ANI-2x on a ligand: torchani's TorchScript model vs openmm-hybrid's, side by side.

The old route (openmm-hybrid before this module existed, and what torchani offers) is
torchani's ANI-2x converted to its batched-matmul inference form (``to_infer_model``) and
compiled with ``torch.jit.script``.  The new route is
:class:`openmm_hybrid.models.ani.ANI2xRegionModel`: a lean AEV restricted to the elements of
the region and first layers cut to the non-zero features.  Both evaluate energy and
forces (autograd) of the same molecule in the same process; they are timed in interleaved
rounds and the median round is reported, both wall-clock (``perf_counter``) and CPU time of
the process (``process_time``, which counts all torch threads and is less sensitive to other
programs on the machine, but larger than wall time when torch uses several threads).

    python benchmarks/bench_ani.py                    # three ligand sizes, float32
    python benchmarks/bench_ani.py --threads 1 --precision double
"""
import argparse
import statistics
import time

import torch

from openmm_hybrid.models import load_model
from openmm_hybrid.models.ani import load_torchani_ani2x
from openmm_hybrid.testing import use_shared_models

use_shared_models()

# name, SMILES: about 18, 40 and 80 atoms with hydrogens
LIGANDS = [
    ("p-xylene", "Cc1ccc(C)cc1"),
    ("celecoxib", "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F"),
    ("atorvastatin", "CC(C)c1c(C(=O)Nc2ccccc2)c(-c2ccccc2)c(-c2ccc(F)cc2)n1CC[C@@H](O)C[C@@H](O)CC(=O)O"),
]


class TorchaniRoute(torch.nn.Module):
    """The old route: torchani's inference-form ensemble in TorchScript (nm in, kJ/mol out)."""

    def __init__(self, dtype):
        super().__init__()
        import torchani
        self.ani = load_torchani_ani2x().to_infer_model().to(dtype)
        self.hartree_to_kjmol = float(torchani.units.hartree2kjoulemol(1.0))

    def forward(self, atomic_numbers: torch.Tensor, positions: torch.Tensor,
                total_charge: torch.Tensor) -> torch.Tensor:
        energies = self.ani((atomic_numbers.unsqueeze(0), (positions * 10.0).unsqueeze(0))).energies
        return energies[0].to(torch.float64) * self.hartree_to_kjmol


def conformer(smiles, seed=7):
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    AllChem.MMFFOptimizeMolecule(mol)
    return [a.GetAtomicNum() for a in mol.GetAtoms()], mol.GetConformer().GetPositions() / 10.0  # nm


def energy_and_forces(module, z, x, q):
    energy = module(z, x, q)
    (grad,) = torch.autograd.grad(energy, x)
    return energy, grad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["single", "double"], default="single")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=30, help="fwd+bwd evaluations per timed round")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.precision == "double" else torch.float32
    old_route = torch.jit.script(TorchaniRoute(dtype))
    model = load_model("ani2x", precision=args.precision)
    print(f"ANI-2x fwd+bwd, {args.precision} precision, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.rounds} interleaved rounds x {args.calls} calls (median)")
    print(f"{'ligand':14s} {'atoms':>5s} {'features':>8s} | {'torchani ms':>11s} {'hybrid ms':>9s} {'ratio':>6s} | "
          f"{'CPU ms':>7s} {'CPU ms':>7s} {'ratio':>6s} | {'|dE| kJ/mol':>11s}")
    results = []
    for name, smiles in LIGANDS:
        z, xyz = conformer(smiles)
        zt = torch.tensor(z)
        q = torch.tensor(0.0, dtype=dtype)
        x = torch.tensor(xyz, dtype=dtype, requires_grad=True)
        new_route = torch.jit.script(model.module.specialize(z))
        routes = {"old": old_route, "new": new_route}
        energies = {}
        for key, module in routes.items():
            for _ in range(5):  # TorchScript profiling runs, allocator warm-up
                energies[key] = float(energy_and_forces(module, zt, x, q)[0].detach())
        wall = {key: [] for key in routes}
        cpu = {key: [] for key in routes}
        for _ in range(args.rounds):
            for key, module in routes.items():
                w0, c0 = time.perf_counter(), time.process_time()
                for _ in range(args.calls):
                    energy_and_forces(module, zt, x, q)
                wall[key].append(1000 * (time.perf_counter() - w0) / args.calls)
                cpu[key].append(1000 * (time.process_time() - c0) / args.calls)
        w = {key: statistics.median(v) for key, v in wall.items()}
        c = {key: statistics.median(v) for key, v in cpu.items()}
        print(f"{name:14s} {len(z):5d} {new_route.aev.out_dim:8d} | {w['old']:11.2f} {w['new']:9.2f} "
              f"{w['new'] / w['old']:6.2f} | {c['old']:7.2f} {c['new']:7.2f} {c['new'] / c['old']:6.2f} | "
              f"{abs(energies['new'] - energies['old']):11.2e}")
        results.append((name, len(z), w, c))
    return results


if __name__ == "__main__":
    main()
