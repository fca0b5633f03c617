"""The MM force field of an ML/MM build: OpenMM's ``ForceField`` with ligand templates and a flexible region.

:class:`MMForceField` is an ``openmm.app.ForceField`` that parametrises the given small molecules
(GAFF2/AM1-BCC or OpenFF, :class:`~openmm_hybrid.mm.templates.LigandTemplateGenerator`) and leaves
the future ML region unconstrained (:class:`FlexibleRegionGenerator`).  ``openmm-hybrid build``
creates its System with it; :class:`openmm_hybrid.forcefield.HybridForceField` extends it with the
ML/MM embedding, so both routes parametrise the same way.

Why the region stays flexible: OpenMM drops the MM bond term of a constrained bond.  If the
ligand's X-H bonds were constrained in the MM System, the MM end state of ``lambda_interpolate``
(and the fast group of a multiple-time-step System) would have no bond term for them, and a
constraint would freeze a degree of freedom the ML potential is meant to describe.  So
constraints (HBonds, AllBonds, HAngles, rigid water) never act inside the region, and everything
outside it is constrained as requested.
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Iterable, List, Optional

import openmm.app as app

from .._util import progress
from ..errors import HybridError, ParameterizationError, RegionError
from .residue_labels import residue_in_openmm_message, residue_label
from .selection import select_region
from .templates import LigandTemplateGenerator

__all__ = ["MMForceField", "FlexibleRegionGenerator", "called_from_modeller"]


def called_from_modeller() -> bool:
    """Whether ``openmm.app.Modeller`` is on the call stack.

    ``Modeller.addHydrogens``, ``addSolvent`` and ``addExtraParticles`` call ``createSystem`` for
    hydrogen positions, the total charge to neutralise and bond lengths; they need the MM System
    as the force field files describe it, so the generators here do nothing for them.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "openmm.app.modeller":
            return True
        frame = frame.f_back
    return False


class FlexibleRegionGenerator:
    """Force-field generator that resolves the ML region and leaves it unconstrained.

    Registered *first* among the ForceField's generators (:meth:`register`), so that its
    ``createForce`` runs before the bonded generators read which bonds are constrained; it adds
    no force.  The region's atom indices are left on the ``createSystem`` data object as
    ``data.openmm_hybrid_region`` (None when ``Modeller`` is the caller).

    Parameters
    ----------
    residues : iterable of str, optional
        The region as residue names.
    region : str or sequence of int, optional
        The region as an MDTraj selection (``"resname LIG"``) or atom indices.
    ligand_generator : LigandTemplateGenerator, optional
        The region is every residue whose template came from this generator (its ligands).
        Exactly one of ``residues``, ``region`` and ``ligand_generator`` is given.
    """

    def __init__(self, residues: Optional[Iterable[str]] = None, region=None, ligand_generator=None):
        given = [x is not None for x in (residues, region, ligand_generator)]
        if sum(given) != 1:
            raise HybridError("give the ML region one way: residue names, a selection/atom indices, or the "
                              "ligands of a template generator")
        if residues is not None:
            residues = [residues] if isinstance(residues, str) else list(residues)
            residues = [name for item in residues for name in str(item).replace(",", " ").split()]
            if not residues:
                raise RegionError("the ML region's residue list is empty")
        self.residues = residues
        self.region = region
        self.ligand_generator = ligand_generator
        self._forcefield = None

    def register(self, forcefield) -> None:
        """Attach this generator to ``forcefield``, first among its generators."""
        if any(isinstance(g, FlexibleRegionGenerator) for g in forcefield.getGenerators()):
            raise HybridError("the ForceField already has an ML region (<MLMMEmbedding> or a flexible region); "
                              "a ForceField takes one (one ML region, which may hold several residues)")
        forcefield.getGenerators().insert(0, self)
        self._forcefield = forcefield

    def region_label(self) -> str:
        """How the region was given, for messages."""
        if self.residues is not None:
            return f"residues {', '.join(self.residues)}"
        if self.region is not None:
            return repr(self.region) if isinstance(self.region, str) else "given as atom indices"
        return "the ligands' residues"

    def region_atoms(self, data) -> List[int]:
        """Atom indices of the region in the topology being parametrised."""
        atoms_all = data.atoms
        if self.residues is not None:
            names = set(self.residues)
            atoms = [a.index for a in atoms_all if a.residue.name in names]
        elif self.ligand_generator is not None:
            owned = {a.residue for a in atoms_all
                     if self.ligand_generator.owns_atom_type(data.atomType.get(a, ""))}
            atoms = [a.index for a in atoms_all if a.residue in owned]
        elif atoms_all:
            return select_region(atoms_all[0].residue.chain.topology, self.region)
        else:
            atoms = []
        if not atoms:
            present = sorted({a.residue.name for a in atoms_all})
            shown = ", ".join(present[:15]) + (", ..." if len(present) > 15 else "")
            raise RegionError(f"the ML region ({self.region_label()}) selects no atoms of the topology "
                              f"({len(atoms_all)} atoms; residue names: {shown or 'none'})")
        return atoms

    def createForce(self, sys, data, nonbondedMethod, nonbondedCutoff, args) -> None:
        """Resolve the region and clear the constraint flags of its bonds and angles (adds no force)."""
        data.openmm_hybrid_region = None
        if called_from_modeller():
            return
        atoms = self.region_atoms(data)
        data.openmm_hybrid_region = atoms
        region = set(atoms)
        freed = 0
        for bond in data.bonds:
            if bond.isConstrained and bond.atom1 in region and bond.atom2 in region:
                bond.isConstrained = False
                freed += 1
        for i, angle in enumerate(data.angles):
            if data.isAngleConstrained[i] and all(a in region for a in angle):
                data.isAngleConstrained[i] = False
                freed += 1
        if freed:
            progress(f"ML region: {freed} bond/angle constraint(s) inside the region left out (the region "
                     f"stays flexible; use a 1 fs time step or hydrogen mass repartitioning)")


def _as_list(molecules) -> list:
    if isinstance(molecules, (str, os.PathLike)) or not hasattr(molecules, "__iter__"):
        return [molecules]  # one molecule given on its own
    return list(molecules)


class MMForceField(app.ForceField):
    """An ``openmm.app.ForceField`` that parametrises small molecules and keeps them flexible.

    Parameters
    ----------
    *files : str or file
        Force-field XML files, as for ``ForceField`` (``"amber14-all.xml"``, ``"amber14/tip3p.xml"``, ...).
    ligands : iterable, optional
        Small molecules (SDF/MOL2 paths, SMILES, RDKit molecules or
        :class:`~openmm_hybrid.mm.ligand.Ligand`); residues matching them get GAFF2/AM1-BCC (or OpenFF)
        templates from a :class:`LigandTemplateGenerator` (:attr:`ligand_generator`), parametrised
        once per molecule and cached on disk.
    ligand_forcefield : str
        ``"gaff2"`` (AM1-BCC, default) or an OpenFF force field such as ``"openff-2.2.0"``.
    ligand_cache : bool
        Use the on-disk ligand parameter cache (default True).
    region : str or sequence of int, optional
        The region to keep flexible, as an MDTraj selection or atom indices; default: the
        ligands' residues.
    constrain_region : bool
        Apply ``constraints`` inside the region too (no flexible region).
    charge_method : {"bcc", "abcg2", "gas"}
        GAFF2 charge method of the ligands and cofactors (AM1-BCC by default).
    cofactors : iterable, optional
        Further small molecules (cofactors, second ligands) parametrised like the ligands but
        never part of the ML region.
    ligand_parameters : iterable of LigandParameters, optional
        Parameters computed beforehand for some of the ``ligands``/``cofactors`` (see
        :class:`LigandTemplateGenerator`).
    """

    def __init__(self, *files, ligands: Iterable = (), ligand_forcefield: str = "gaff2", ligand_cache: bool = True,
                 region=None, constrain_region: bool = False, charge_method: str = "bcc", cofactors: Iterable = (),
                 ligand_parameters: Iterable = ()):
        super().__init__(*files)
        ligands, cofactors = _as_list(ligands), _as_list(cofactors)
        ligand_parameters = list(ligand_parameters)
        self.ligand_generator = None
        self.cofactor_generator = None
        if ligands:
            self.ligand_generator = LigandTemplateGenerator(ligands, forcefield=ligand_forcefield,
                                                            cache=ligand_cache, charge_method=charge_method,
                                                            parameters=ligand_parameters)
            self.registerTemplateGenerator(self.ligand_generator.generator)
        if cofactors:
            self.cofactor_generator = LigandTemplateGenerator(cofactors, forcefield=ligand_forcefield,
                                                              cache=ligand_cache, charge_method=charge_method,
                                                              parameters=ligand_parameters)
            self.registerTemplateGenerator(self.cofactor_generator.generator)
        self.region = region
        self.region_generator = None
        if not constrain_region and (region is not None or self.ligand_generator is not None):
            self.region_generator = self._make_region_generator()
            self.region_generator.register(self)

    def _make_region_generator(self) -> FlexibleRegionGenerator:
        return FlexibleRegionGenerator(region=self.region,
                                       ligand_generator=self.ligand_generator if self.region is None else None)

    # OpenMM checks unused keyword arguments against the signature of ``self.createSystem``:
    # keep ForceField.createSystem's (functools.wraps sets __wrapped__, which inspect follows).
    @functools.wraps(app.ForceField.createSystem, assigned=("__module__", "__name__", "__qualname__"))
    def createSystem(self, topology, *args, **kwargs):
        """``ForceField.createSystem``; a residue without template gets an error naming the ligands known.

        Raises
        ------
        ParameterizationError
            A residue has no template and matches none of the ``ligands``; the message names it
            by chain and file residue number and says which option provides a template.
        LigandError
            A residue matches a ligand's heavy atoms but not its hydrogens.
        """
        try:
            return super().createSystem(topology, *args, **kwargs)
        except ValueError as exc:
            if str(exc).startswith("No template found") and not isinstance(exc, HybridError):
                raise ParameterizationError(self.missing_template_message(topology, exc)) from exc
            raise

    def missing_template_message(self, topology, exc) -> str:
        """Why a residue of ``topology`` has no template, naming it by chain and file number, and what to do."""
        residue = residue_in_openmm_message(str(exc), topology)
        what = f"residue {residue_label(residue)}" if residue is not None else "a residue"
        known = [f"{l.name} ({l.resname})" for g in (self.ligand_generator, self.cofactor_generator)
                 if g is not None for l in g.molecules]
        if residue is not None and residue.name in app.PDBFile._standardResidues:
            advice = ("it is a standard residue whose atoms do not match its template (missing or extra atoms): "
                      "repair the structure, e.g. with --prepare (PDBFixer adds missing heavy atoms; "
                      "prepare=True), or give a template for this form with --forcefield FILE.xml "
                      "(forcefield_files=[...])")
        else:
            advice = ("for a modified residue or a metal site, give its template with --forcefield FILE.xml "
                      "(forcefield_files=[...]); for a small molecule kept in MM (cofactor, second ligand), give "
                      "its molecule with --cofactor FILE_OR_SMILES:RESNAME (cofactors=[...]); for the ML ligand, "
                      "give its molecule (SDF/MOL2, SMILES or RDKit, with the structure's hydrogens) as the ligand "
                      "(ligands=[...])")
        return (f"{what} has no template: it is not in the force-field files and matches none of the molecules "
                f"given ({', '.join(known) or 'none'}); {advice}.\nOpenMM: {exc}")
