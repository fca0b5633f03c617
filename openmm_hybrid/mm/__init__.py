"""Topology -> MM System: ligand input, ligand parameters, residue templates, the MM force field, the builder.

- :mod:`.ligand`: :func:`load_ligand` / :class:`Ligand` (SDF, MOL2, SMILES, RDKit);
- :mod:`.parameters`: small-molecule parameters (GAFF2/AM1-BCC through AmberTools, OpenFF), cached;
- :mod:`.templates`: :class:`LigandTemplateGenerator`, residue templates for ``ForceField``;
- :mod:`.forcefield`: :class:`MMForceField` (ligand templates, flexible ML region);
- :mod:`.selection`: atom selections (MDTraj strings or indices);
- :mod:`.protein`: :func:`prepare_protein`, protein files as they come (waters, ions, cofactors,
  hydrogens keeping the file's protonation states; :mod:`.protonation`), repaired with PDBFixer
  on request (:mod:`.structure_preparation`); :mod:`.complex_ligand`: a ligand or cofactor taken
  from the structure with a template; :mod:`.residue_labels`: residues named by chain and number;
- :mod:`.implicit_solvent`: OBC2 as OpenMM's native GBSAOBCForce (or amber14's CustomGBForce files);
- :mod:`.builder`: :func:`build_system`, protein + ligand -> solvated MM System;
- :mod:`.series`: :func:`build_series`, a ligand series against one protein, parameters in parallel;
- :mod:`.system_files`: :class:`BuiltSystem` and :func:`load_build`, System folders on disk.
"""
from .builder import build_system
from .protein import PreparedProtein, prepare_protein
from .series import SeriesResult, build_series
from .forcefield import MMForceField
from .ligand import Ligand, load_ligand
from .selection import select_region
from .system_files import BuiltSystem, load_build, make_state
from .templates import LigandTemplateGenerator

__all__ = ["build_system", "build_series", "SeriesResult", "prepare_protein", "PreparedProtein", "MMForceField",
           "Ligand", "load_ligand", "select_region", "BuiltSystem", "load_build",
           "make_state", "LigandTemplateGenerator"]
