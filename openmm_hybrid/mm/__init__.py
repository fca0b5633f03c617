"""Topology -> MM System: ligand input, ligand parameters, residue templates, the MM force field, the builder.

- :mod:`.ligand`: :func:`load_ligand` / :class:`Ligand` (SDF, MOL2, SMILES, RDKit);
- :mod:`.parameters`: small-molecule parameters (GAFF2/AM1-BCC through AmberTools, OpenFF), cached;
- :mod:`.templates`: :class:`LigandTemplateGenerator`, residue templates for ``ForceField``;
- :mod:`.forcefield`: :class:`MMForceField` (ligand templates, flexible ML region);
- :mod:`.selection`: atom selections (MDTraj strings or indices);
- :mod:`.builder`: :func:`build_system`, protein + ligand -> solvated MM System;
- :mod:`.system_files`: :class:`BuiltSystem` and :func:`load_build`, System folders on disk.
"""
from .builder import build_system
from .forcefield import MMForceField
from .ligand import Ligand, load_ligand
from .selection import select_region
from .system_files import BuiltSystem, load_build, make_state
from .templates import LigandTemplateGenerator

__all__ = ["build_system", "MMForceField", "Ligand", "load_ligand", "select_region", "BuiltSystem", "load_build",
           "make_state", "LigandTemplateGenerator"]
