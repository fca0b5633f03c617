"""Writes the TorchScript modules of the C++ tests (run by CTest before TestReferenceKernel;
generated at test time so that no binary module is kept in the repository).

usage: python make_test_modules.py OUTPUT_DIRECTORY

pairs.pt     forward(positions, k, a) =
                 k * sum_i |x_i - c|^2 + a * sum_{i<j} exp(-|x_i - x_j|^2 / S2),
             c = (0.1, -0.2, 0.3), S2 = 0.5 (non-periodic, two global parameters)
box.pt       forward(positions, boxvectors) = sum_ab W_ab box_ab + sum_i A . x_i,
             W = [[1, 2, 3], [10, 20, 30], [100, 200, 300]], A = (0.5, -1.5, 2.5) (periodic)

TestReferenceKernel.cpp evaluates the same formulas in C++.
"""
import sys
from pathlib import Path

import torch


class Pairs(torch.nn.Module):
    def forward(self, positions: torch.Tensor, k: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # (TorchScript builds torch.tensor([0.1, ...]) from float32 values; tenths of exact
        # integers give the float64 values of 0.1, -0.2, 0.3, as in the C++ test)
        center = torch.tensor([1.0, -2.0, 3.0], dtype=positions.dtype) / 10.0
        d = positions.unsqueeze(0) - positions.unsqueeze(1)
        r2 = (d ** 2).sum(-1)
        n = positions.shape[0]
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        return k * ((positions - center) ** 2).sum() + a * torch.exp(-r2[upper] / 0.5).sum()


class Box(torch.nn.Module):
    def forward(self, positions: torch.Tensor, boxvectors: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [100.0, 200.0, 300.0]], dtype=positions.dtype)
        slope = torch.tensor([0.5, -1.5, 2.5], dtype=positions.dtype)
        return (boxvectors * weights).sum() + (positions * slope).sum()


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(Pairs()), str(out / "pairs.pt"))
    torch.jit.save(torch.jit.script(Box()), str(out / "box.pt"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
