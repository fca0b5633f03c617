"""System builder: protein (PDB/mmCIF) + ligand (SDF/MOL2/SMILES) -> solvated MM System.

The protein gets Amber ff14SB (``amber14-all.xml``), prepared by
:func:`~openmm_hybrid.mm.protein.prepare_protein` (optionally repaired with PDBFixer; crystal
waters, ions and cofactors kept; hydrogens added keeping the file's protonation states).  The
ligand gets GAFF2 + AM1-BCC (or another charge method, or OpenFF) through
:class:`~openmm_hybrid.mm.templates.LigandTemplateGenerator`; it may also be taken out of the
protein file with a template.  The force field is an :class:`~openmm_hybrid.mm.forcefield.MMForceField`
(the ligand is left unconstrained as the future ML region), the base of
:class:`~openmm_hybrid.forcefield.HybridForceField`, so there is one parametrisation path;
``embed`` then applies :func:`~openmm_hybrid.hybrid.create_hybrid_system`, which HybridForceField
calls as well.  A ligand series is built by :func:`~openmm_hybrid.mm.series.build_series`.
"""
import math
import os
from typing import Callable, Iterable, Optional

import openmm
import openmm.app as app
from openmm import unit

from .._util import as_quantity, progress
from ..errors import HybridError
from .forcefield import MMForceField
from .implicit_solvent import add_native_obc2, check_implicit, describe_implicit, implicit_forcefield_files
from .ligand import Ligand, load_ligand
from .protein import WATER_XML, PreparedProtein, prepare_protein
from .structure_checks import check_build_arguments, check_masses, check_structure
from .system_files import BuiltSystem

SOLVENTS = ("explicit", "implicit", "vacuum")
BOX_SHAPES = ("auto", "cube", "dodecahedron", "octahedron")
_PROTEIN_VARIANTS = ("HID", "HIE", "HIP", "CYX", "CYM", "ASH", "GLH", "LYN", "ACE", "NME")


def choose_box_shape(positions, padding, cutoff) -> str:
    """``"dodecahedron"`` when its reduced box is wide enough for ``cutoff``, else ``"cube"`` (nm values).

    With the same padding, OpenMM gives both shapes the same edge ``w`` (solute diameter plus
    padding, at least twice the padding), so every solute atom is as far from every periodic
    copy in both; the rhombic dodecahedron holds that with 71% of the cube's volume.  OpenMM
    needs the cutoff below half of each reduced box height, which is ``w`` for the cube and
    ``w / sqrt(2)`` for the dodecahedron's third vector: small solutes get the cube.
    """
    xyz = [p.value_in_unit(unit.nanometer) for p in positions] if unit.is_quantity(positions) else positions
    if len(xyz) == 0:
        radius = 0.0
    else:
        lo = [min(p[i] for p in xyz) for i in range(3)]
        hi = [max(p[i] for p in xyz) for i in range(3)]
        center = [0.5 * (a + b) for a, b in zip(lo, hi)]
        radius = max(math.dist(center, p) for p in xyz)
    width = max(2 * radius + padding, 2 * padding)
    return "dodecahedron" if width * math.sqrt(0.5) >= 2 * cutoff else "cube"


#: The options of :func:`build_system` that concern the protein (passed on to prepare_protein).
PROTEIN_OPTIONS = ("ph", "protein_ff", "water_model", "forcefield_files", "remove_waters", "remove_residues",
                   "prepare", "add_missing_termini", "keep_hydrogens", "cofactors", "ligand_ff", "charge_method",
                   "ligand_cache", "check_ligand")


def prepare_build_protein(protein, ligand_resname: str = "LIG", ligand_template=None, **build_options) -> PreparedProtein:
    """The protein of ``build_system(protein=protein, **build_options)``, prepared once (e.g. for a series).

    Options of :func:`build_system` that do not concern the protein are ignored.
    """
    options = {k: v for k, v in build_options.items() if k in PROTEIN_OPTIONS}
    return prepare_protein(protein, ligand_resname=ligand_resname if ligand_template is not None else None,
                           ligand_template=ligand_template, **options)


def build_system(protein=None, ligand=None, ligand_resname: str = "LIG", solvent: str = "explicit",
                 padding=1.0 * unit.nanometer, ionic_strength=0.15 * unit.molar, ph: float = 7.0,
                 protein_ff: str = "amber14-all.xml", water_model: str = "tip3p", ligand_ff: str = "gaff2",
                 nonbonded_cutoff=1.0 * unit.nanometer, constraints=app.HBonds, hydrogen_mass=None,
                 ligand_cache: bool = True, constrain_ligand: bool = False,
                 box_shape: str = "auto", ligand_name: Optional[str] = None, ligand_index: Optional[int] = None,
                 ligand_template=None, cofactors: Iterable = (), forcefield_files: Iterable[str] = (),
                 remove_waters: bool = False, remove_residues: Iterable[str] = (), prepare: bool = False,
                 add_missing_termini: bool = False, keep_hydrogens: Optional[bool] = None,
                 charge_method: str = "bcc", implicit_solvent: str = "obc2", gb_force: str = "native",
                 check_ligand: Optional[Callable[[Ligand], None]] = None,
                 ligand_parameters=None, allow_chain_breaks: bool = False) -> BuiltSystem:
    """Build a parametrised (and optionally solvated) protein-ligand MM System.

    Parameters
    ----------
    protein : str, Path or PreparedProtein, optional
        PDB or mmCIF file (prepared as :func:`~openmm_hybrid.mm.protein.prepare_protein` says,
        with the options below), or a protein prepared before.  Omit for a ligand alone.
    ligand : str, Path, RDKit Mol or Ligand, optional
        SDF/MOL2 file (explicit hydrogens, 3D; a file of several molecules needs ``ligand_name``
        or ``ligand_index``), or a SMILES string (a conformer is generated).
    ligand_resname : str
        Residue name given to the ligand (the ML region is usually ``"resname LIG"``); with
        ``ligand_template``, the name of the ligand's residue in the protein file (kept).
    ligand_name, ligand_index : str or int, optional
        Which molecule of a multi-molecule ligand file: its title, or its position from 0.
    ligand_template : str, Path or RDKit Mol, optional
        Take the ligand from the protein file (residue ``ligand_resname``): its heavy atoms and
        coordinates from the file, bond orders, charges and hydrogens from this template (SMILES
        or SDF/MOL2); a template that does not match the residue is refused with what differs.
    solvent : {"explicit", "implicit", "vacuum"}
        TIP3P box with PME (default), implicit solvent, or no solvent.  Crystal waters and ions
        of the protein file are kept in every mode.
    padding : Quantity or float
        Explicit solvent padding (nm), with OpenMM's meaning: the box edge is the diameter of
        the solute's bounding sphere plus ``padding`` (at least ``2*padding``), so no solute atom
        comes closer than ``padding`` to a periodic copy of the solute.
    ionic_strength : Quantity or float
        Salt concentration (molar) added on top of neutralising Na+/Cl- ions.
    ph : float
        pH at which the protonation states of residues without hydrogens are chosen.
    box_shape : {"auto", "cube", "dodecahedron", "octahedron"}
        Periodic box shape for explicit solvent.  ``"auto"`` (default): the rhombic
        dodecahedron (same padding, about 71% of the cube's volume) where its box is wide enough
        for the cutoff, else the cube (:func:`choose_box_shape`).
    protein_ff, water_model : str
        Protein force field XML and water model (``tip3p``, ``tip3pfb``, ``spce``, ``opc``).
    ligand_ff : str
        ``"gaff2"`` or ``"openff-2.2.0"`` (needs openff-toolkit).
    charge_method : {"bcc", "abcg2", "gas"}
        GAFF2 charges of the ligand and cofactors (see
        :data:`~openmm_hybrid.mm.parameters.CHARGE_METHOD_COSTS`).
    cofactors : iterable
        Small molecules of the protein file kept in MM, as ``"FILE_OR_SMILES[:RESNAME]"``.
    forcefield_files : iterable of str
        Extra force-field XML files: templates for modified residues, metal sites.
    remove_waters : bool
        Drop the protein file's crystal waters.
    remove_residues : iterable of str
        Residue names to drop from the protein file.
    prepare : bool
        Repair the protein file with PDBFixer (missing atoms and residues, alternate locations,
        nonstandard residues; ``prep.json``).  ``add_missing_termini`` also adds missing
        residues at chain ends.
    keep_hydrogens : bool or None
        None (default) or True: residues that carry hydrogens keep their protonation state;
        False: every titratable residue is protonated at ``ph``.
    implicit_solvent : {"obc2", "gbn2"}
        Implicit-solvent model.
    gb_force : {"native", "custom"}
        OBC2 as OpenMM's native ``GBSAOBCForce`` (default, same parameters as amber14's
        ``implicit/obc2.xml``) or that file's ``CustomGBForce``; GBn2 needs ``"custom"``.
    nonbonded_cutoff : Quantity or float
        Direct-space cutoff for PME (nm).
    constraints : openmm.app constraint type
        Default ``HBonds``: bonds to hydrogen are constrained in the protein, and water is rigid.
    constrain_ligand : bool
        Also constrain the ligand's bonds to hydrogen.  Off by default because the ligand is
        the ML region: the ML model describes those bonds, and OpenMM drops the MM bond term
        of a constrained bond, which would leave the MM end state of ``lambda_interpolate``
        without one.
    hydrogen_mass : Quantity or float, optional
        Hydrogen mass repartitioning target mass (amu).
    check_ligand : callable, optional
        Called with the :class:`Ligand` before anything is parametrised (e.g. the ML model's
        elements and charge, :func:`openmm_hybrid.hybrid.ligand_check.ligand_checker`); raises
        to refuse it.
    ligand_parameters : LigandParameters, optional
        The ligand's parameters computed beforehand, in its atom order (worker processes of a
        series); they are not computed again.
    allow_chain_breaks : bool
        Build a protein with missing residues anyway (see :mod:`.structure_checks`, which also
        refuses heavy-atom clashes and out-of-range arguments).

    Returns
    -------
    BuiltSystem
        ``info`` is ``build.json``; ``reports["prep.json"]`` says what was done to the protein
        file (repairs, protonation states, waters, ions, cofactors).
    """
    if solvent not in SOLVENTS:
        raise HybridError(f"solvent must be one of {', '.join(SOLVENTS)}, not {solvent!r}")
    if protein is None and ligand is None:
        raise HybridError("nothing to build: give a protein, a ligand or both")
    if water_model not in WATER_XML:
        raise HybridError(f"water model must be one of {', '.join(WATER_XML)}, not {water_model!r}")
    if box_shape not in BOX_SHAPES:
        raise HybridError(f"box shape must be one of {', '.join(BOX_SHAPES)}, not {box_shape!r}")
    if solvent == "implicit":
        check_implicit(implicit_solvent, gb_force)
    if ligand_template is not None and ligand is not None:
        raise HybridError("give the ligand either as a molecule (ligand=, --ligand) or as a residue of the protein "
                          "file (ligand_template=, --ligand-template), not both")
    if ligand_template is not None and protein is None:
        raise HybridError("a ligand template takes the ligand from the protein file: give the protein file too")
    padding = as_quantity(padding, unit.nanometer)
    ionic_strength = as_quantity(ionic_strength, unit.molar)
    nonbonded_cutoff = as_quantity(nonbonded_cutoff, unit.nanometer)
    check_build_arguments(padding, ionic_strength, nonbonded_cutoff, hydrogen_mass, ph)

    lig = None if ligand is None else load_ligand(ligand, resname=ligand_resname, name=ligand_name,
                                                   index=ligand_index)
    if lig is not None and check_ligand is not None:
        check_ligand(lig)
    if protein is not None and not isinstance(protein, PreparedProtein):
        protein = prepare_build_protein(protein, ph=ph, protein_ff=protein_ff, water_model=water_model,
                                        forcefield_files=forcefield_files, remove_waters=remove_waters,
                                        remove_residues=remove_residues, prepare=prepare,
                                        add_missing_termini=add_missing_termini, keep_hydrogens=keep_hydrogens,
                                        cofactors=cofactors, ligand_resname=ligand_resname,
                                        ligand_template=ligand_template, ligand_ff=ligand_ff,
                                        charge_method=charge_method, ligand_cache=ligand_cache,
                                        check_ligand=check_ligand)
    if ligand_template is not None:
        lig = protein.ligand
        ligand_resname = lig.resname

    xml_files = list(protein.forcefield_files) if protein is not None else [protein_ff]
    if solvent == "explicit" and WATER_XML[water_model] not in xml_files:
        xml_files.append(WATER_XML[water_model])
    if solvent == "implicit":
        xml_files += implicit_forcefield_files(implicit_solvent, gb_force)
    given = ([] if protein is None else list(protein.cofactor_parameters)) + \
        ([] if ligand_parameters is None else [ligand_parameters])
    # The same force field as HybridForceField(..., ligands=[ligand]) without a model: the
    # ligand's template comes from the LigandTemplateGenerator and the ligand (the future ML
    # region) is left unconstrained, unless constrain_ligand; `embed` adds the ML part.
    forcefield = MMForceField(*xml_files, ligands=[] if lig is None else [lig], ligand_forcefield=ligand_ff,
                              ligand_cache=ligand_cache, constrain_region=constrain_ligand,
                              charge_method=charge_method, cofactors=[] if protein is None else protein.cofactors,
                              ligand_parameters=given)

    modeller = protein.modeller() if protein is not None else app.Modeller(app.Topology(), [])
    if lig is not None:
        lig_topology, lig_positions = lig.to_openmm()
        modeller.add(lig_topology, lig_positions)
    check_structure(modeller.topology, modeller.positions, allow_chain_breaks,
                    protein.modelled_residues if protein is not None else ())

    chosen_shape = None
    if solvent == "explicit":
        chosen_shape = box_shape if box_shape != "auto" else choose_box_shape(
            modeller.positions, padding.value_in_unit(unit.nanometer), nonbonded_cutoff.value_in_unit(unit.nanometer))
        progress(f"solvating with {water_model.upper()}: {chosen_shape} box, padding {padding}, ionic strength "
                 f"{ionic_strength}")
        modeller.addSolvent(forcefield, model=water_model if water_model != "tip3pfb" else "tip3p",
                            padding=padding, ionicStrength=ionic_strength, neutralize=True, boxShape=chosen_shape)
        method = app.PME
        # OpenMM needs the cutoff to be at most half of every diagonal element of the (reduced) box
        width = min(v[i] for i, v in enumerate(modeller.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)))
        if width < 2 * nonbonded_cutoff.value_in_unit(unit.nanometer):
            raise HybridError(f"the periodic box ({width:.2f} nm) is narrower than twice the nonbonded cutoff "
                              f"({nonbonded_cutoff}); increase the padding (now {padding})")
    else:
        method = app.NoCutoff

    progress("creating the MM System")
    kwargs = dict(nonbondedMethod=method, constraints=constraints, rigidWater=True)
    if method == app.PME:
        kwargs["nonbondedCutoff"] = nonbonded_cutoff
        kwargs["ewaldErrorTolerance"] = 5e-4
    if hydrogen_mass is not None:
        kwargs["hydrogenMass"] = as_quantity(hydrogen_mass, unit.amu)
    flexible_ligand = constraints is not None and lig is not None and not constrain_ligand
    try:
        system = forcefield.createSystem(modeller.topology, **kwargs)
    except HybridError:
        raise
    except ValueError as exc:
        raise HybridError(f"cannot parametrise the system: {exc}") from exc
    check_masses(system, modeller.topology, None if hydrogen_mass is None else kwargs["hydrogenMass"] / unit.amu)
    if solvent == "implicit" and gb_force == "native":
        add_native_obc2(system, modeller.topology, method)

    topology = modeller.topology
    box = topology.getPeriodicBoxVectors()
    cofactor_names = set() if protein is None else {c.resname for c in protein.cofactors}
    counts = {"total": topology.getNumAtoms(), "protein": 0, "ligand": 0, "water": 0, "ions": 0, "cofactors": 0,
              "other": 0}
    for residue in topology.residues():
        n = len(list(residue.atoms()))
        if residue.name == ligand_resname and lig is not None:
            counts["ligand"] += n
        elif residue.name in ("HOH", "WAT"):
            counts["water"] += n
        elif residue.name in cofactor_names:
            counts["cofactors"] += n
        elif n == 1:
            counts["ions"] += n
        elif residue.name in app.PDBFile._standardResidues or residue.name in _PROTEIN_VARIANTS or \
                any(True for _ in residue.external_bonds()):  # modified residues of the chain count as protein
            counts["protein"] += n
        else:
            counts["other"] += n
    report = None if protein is None else protein.report
    info = {
        "atom_counts": counts,
        "n_waters": sum(1 for r in topology.residues() if r.name == "HOH"),
        "crystal_waters": None if report is None else report["waters"]["kept"],
        "ligand": None if lig is None else {
            "resname": ligand_resname, "name": lig.name, "smiles": lig.canonical_smiles,
            "net_charge": lig.net_charge, "n_atoms": lig.mol.GetNumAtoms(), "source": lig.source},
        "cofactors": [] if protein is None else [
            {"name": c.name, "resname": c.resname, "net_charge": c.net_charge, "n_atoms": c.n_atoms}
            for c in protein.cofactors],
        "force_fields": {"protein": protein_ff if protein is not None else None,
                         "water": WATER_XML[water_model] if WATER_XML[water_model] in xml_files else None,
                         "extra": list(forcefield_files),
                         "implicit_solvent": describe_implicit(implicit_solvent, gb_force) if solvent == "implicit"
                         else None,
                         "ligand": None if lig is None else ("GAFF2 + " + {"bcc": "AM1-BCC", "abcg2": "ABCG2",
                                                                          "gas": "Gasteiger"}[charge_method]
                                                             if ligand_ff == "gaff2" else ligand_ff)},
        "charge_method": charge_method if ligand_ff == "gaff2" else None,
        "solvent": solvent,
        "padding_nm": padding.value_in_unit(unit.nanometer) if solvent == "explicit" else None,
        "box_shape": chosen_shape,
        "box_shape_requested": box_shape if solvent == "explicit" else None,
        "ionic_strength_molar": ionic_strength.value_in_unit(unit.molar) if solvent == "explicit" else None,
        "ph": ph if protein is not None else None,
        "nonbonded_method": "PME" if method == app.PME else "NoCutoff",
        "constraints": None if constraints is None else str(constraints) + (
            "" if not flexible_ligand else " (ligand X-H bonds flexible)" if constraints is app.HBonds
            else " (ligand unconstrained)"),
        "hydrogen_mass_amu": None if hydrogen_mass is None else as_quantity(hydrogen_mass, unit.amu).value_in_unit(unit.amu),
        "box_nm": None if box is None else [[round(x, 6) for x in v.value_in_unit(unit.nanometer)] for v in box],
        "system_charge": round(_total_charge(system), 6),
        "protein_file": None if protein is None else os.path.abspath(protein.source),
    }
    progress(f"built: {counts['total']} atoms ({counts['protein']} protein, {counts['ligand']} ligand, "
             f"{info['n_waters']} waters, {counts['ions']} ions, {counts['cofactors']} cofactor atoms)")
    reports = {} if report is None else {"prep.json": report}
    return BuiltSystem(topology, system, modeller.positions, info, reports=reports)


def _total_charge(system) -> float:
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            return sum(force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                       for i in range(force.getNumParticles()))
    return 0.0
