"""MM System -> hybrid (ML/MM) System.

- :mod:`.system`: :func:`create_hybrid_system` and :class:`HybridSystem`, the package's central step;
- :mod:`.mts`: the fast/slow force-group split for multiple-time-step integration;
- :mod:`.ligand_check`: :func:`ligand_checker`, refusing a ligand the model or embedding cannot
  take before it is parametrised.
"""
from .ligand_check import ligand_checker
from .mts import check_mts_groups, make_mts_ready, mts_force_groups
from .system import HybridSystem, create_hybrid_system

__all__ = ["HybridSystem", "create_hybrid_system", "ligand_checker", "check_mts_groups", "make_mts_ready",
           "mts_force_groups"]
