"""System builder: protein (PDB/mmCIF) + ligand (SDF/MOL2/SMILES) -> solvated MM System.

The protein gets Amber ff14SB (``amber14-all.xml``) with missing hydrogens added at the
requested pH; the ligand gets GAFF2 + AM1-BCC (or OpenFF) through
:class:`~openmm_hybrid.mm.templates.LigandTemplateGenerator`.  The force field is an
:class:`~openmm_hybrid.mm.forcefield.MMForceField` (the ligand is left unconstrained as the
future ML region), the base of :class:`~openmm_hybrid.forcefield.HybridForceField`, so there is
one parametrisation path; ``embed`` then applies :func:`~openmm_hybrid.hybrid.create_hybrid_system`,
which HybridForceField calls as well.
"""
import os
from pathlib import Path

import openmm
import openmm.app as app
from openmm import unit

from .._util import as_quantity, progress
from ..errors import HybridError, InputFileError
from .forcefield import MMForceField
from .ligand import load_ligand
from .structure_checks import check_build_arguments, check_masses, check_structure
from .system_files import BuiltSystem

SOLVENTS = ("explicit", "implicit", "vacuum")
WATER_XML = {"tip3p": "amber14/tip3p.xml", "tip3pfb": "amber14/tip3pfb.xml", "spce": "amber14/spce.xml",
             "opc": "amber14/opc.xml"}


def _load_protein(path):
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"protein file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix in (".pdb", ".ent"):
        return app.PDBFile(str(path))
    if suffix in (".cif", ".mmcif", ".pdbx"):
        return app.PDBxFile(str(path))
    raise InputFileError(f"protein file '{path}' has unsupported format '{suffix}': use PDB (.pdb) or mmCIF (.cif)")


def build_system(protein=None, ligand=None, ligand_resname: str = "LIG", solvent: str = "explicit",
                 padding=1.0 * unit.nanometer, ionic_strength=0.15 * unit.molar, ph: float = 7.0,
                 protein_ff: str = "amber14-all.xml", water_model: str = "tip3p", ligand_ff: str = "gaff2",
                 nonbonded_cutoff=1.0 * unit.nanometer, constraints=app.HBonds, hydrogen_mass=None,
                 ligand_cache: bool = True, constrain_ligand: bool = False,
                 box_shape: str = "cube", allow_chain_breaks: bool = False) -> BuiltSystem:
    """Build a parametrised (and optionally solvated) protein-ligand MM System.

    Parameters
    ----------
    protein : str or Path, optional
        PDB or mmCIF file; missing hydrogens are added at ``ph``.  Omit for a ligand alone.
    ligand : str, Path, RDKit Mol or Ligand, optional
        SDF/MOL2 file (explicit hydrogens, 3D), or a SMILES string (a conformer is generated).
    ligand_resname : str
        Residue name given to the ligand (the ML region is usually ``"resname LIG"``).
    solvent : {"explicit", "implicit", "vacuum"}
        TIP3P box with PME (default), OBC2 implicit solvent, or no solvent.
    padding : Quantity or float
        Explicit solvent padding (nm), with OpenMM's meaning: the cubic box edge is the
        diameter of the solute's bounding sphere plus ``padding`` (at least ``2*padding``),
        so no solute atom comes closer than ``padding`` to a periodic copy of the solute.
    ionic_strength : Quantity or float
        Salt concentration (molar) added on top of neutralising Na+/Cl- ions.
    ph : float
        pH for protein protonation.
    box_shape : {"cube", "dodecahedron", "octahedron"}
        Periodic box shape for explicit solvent; a rhombic dodecahedron holds the same
        padding with about 71% of the cube's volume (fewer waters, faster MD).
    protein_ff, water_model : str
        Protein force field XML and water model (``tip3p``, ``tip3pfb``, ``spce``, ``opc``).
    ligand_ff : str
        ``"gaff2"`` (AM1-BCC charges, AmberTools) or ``"openff-2.2.0"`` (needs openff-toolkit).
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
    allow_chain_breaks : bool
        Build a protein with missing residues anyway (see :mod:`.structure_checks`, which also
        refuses heavy-atom clashes and out-of-range arguments).

    Returns
    -------
    BuiltSystem
    """
    if solvent not in SOLVENTS:
        raise HybridError(f"solvent must be one of {', '.join(SOLVENTS)}, not {solvent!r}")
    if protein is None and ligand is None:
        raise HybridError("nothing to build: give a protein, a ligand or both")
    if water_model not in WATER_XML:
        raise HybridError(f"water model must be one of {', '.join(WATER_XML)}, not {water_model!r}")
    padding = as_quantity(padding, unit.nanometer)
    ionic_strength = as_quantity(ionic_strength, unit.molar)
    nonbonded_cutoff = as_quantity(nonbonded_cutoff, unit.nanometer)
    check_build_arguments(padding, ionic_strength, nonbonded_cutoff, hydrogen_mass, ph)

    xml_files = [protein_ff]
    if solvent == "explicit":
        xml_files.append(WATER_XML[water_model])
    elif solvent == "implicit":
        xml_files.append("implicit/obc2.xml")
    lig = None if ligand is None else load_ligand(ligand, resname=ligand_resname)
    # The same force field as HybridForceField(..., ligands=[ligand]) without a model: the
    # ligand's template comes from the LigandTemplateGenerator and the ligand (the future ML
    # region) is left unconstrained, unless constrain_ligand; `embed` adds the ML part.
    forcefield = MMForceField(*xml_files, ligands=[] if lig is None else [lig], ligand_forcefield=ligand_ff,
                              ligand_cache=ligand_cache, constrain_region=constrain_ligand)

    if protein is not None:
        progress(f"reading protein {protein}")
        structure = _load_protein(protein)
        modeller = app.Modeller(structure.topology, structure.positions)
        n_before = modeller.topology.getNumAtoms()
        try:
            modeller.addHydrogens(forcefield, pH=ph)
        except ValueError as exc:
            raise HybridError(f"cannot add hydrogens to protein '{protein}': {exc}") from exc
        progress(f"protein: {modeller.topology.getNumResidues()} residues, "
                 f"{modeller.topology.getNumAtoms() - n_before} hydrogens added at pH {ph}")
    else:
        modeller = app.Modeller(app.Topology(), [])
    if lig is not None:
        lig_topology, lig_positions = lig.to_openmm()
        modeller.add(lig_topology, lig_positions)
    check_structure(modeller.topology, modeller.positions, allow_chain_breaks)

    if solvent == "explicit":
        progress(f"solvating with {water_model.upper()}: padding {padding}, ionic strength {ionic_strength}")
        if box_shape not in ("cube", "dodecahedron", "octahedron"):
            raise HybridError(f"box shape must be cube, dodecahedron or octahedron, not {box_shape!r}")
        modeller.addSolvent(forcefield, model=water_model if water_model != "tip3pfb" else "tip3p",
                            padding=padding, ionicStrength=ionic_strength, neutralize=True, boxShape=box_shape)
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

    topology = modeller.topology
    box = topology.getPeriodicBoxVectors()
    counts = {"total": topology.getNumAtoms(), "protein": 0, "ligand": 0, "water": 0, "ions": 0, "other": 0}
    for residue in topology.residues():
        n = len(list(residue.atoms()))
        if residue.name == ligand_resname and lig is not None:
            counts["ligand"] += n
        elif residue.name in ("HOH", "WAT"):
            counts["water"] += n
        elif residue.name in ("NA", "CL", "K", "MG", "CA", "Na+", "Cl-"):
            counts["ions"] += n
        elif residue.name in app.PDBFile._standardResidues or residue.name in ("HID", "HIE", "HIP", "CYX", "ASH", "GLH", "LYN"):
            counts["protein"] += n
        else:
            counts["other"] += n
    info = {
        "atom_counts": counts,
        "n_waters": sum(1 for r in topology.residues() if r.name == "HOH"),
        "ligand": None if lig is None else {
            "resname": ligand_resname, "name": lig.name, "smiles": lig.canonical_smiles,
            "net_charge": lig.net_charge, "n_atoms": lig.mol.GetNumAtoms()},
        "force_fields": {"protein": protein_ff if protein is not None else None,
                         "water": WATER_XML[water_model] if solvent == "explicit" else None,
                         "implicit_solvent": "implicit/obc2.xml (OBC2)" if solvent == "implicit" else None,
                         "ligand": None if lig is None else ("GAFF2 + AM1-BCC" if ligand_ff == "gaff2" else ligand_ff)},
        "solvent": solvent,
        "padding_nm": padding.value_in_unit(unit.nanometer) if solvent == "explicit" else None,
        "box_shape": box_shape if solvent == "explicit" else None,
        "ionic_strength_molar": ionic_strength.value_in_unit(unit.molar) if solvent == "explicit" else None,
        "ph": ph if protein is not None else None,
        "nonbonded_method": "PME" if method == app.PME else "NoCutoff",
        "constraints": None if constraints is None else str(constraints) + (
            "" if not flexible_ligand else " (ligand X-H bonds flexible)" if constraints is app.HBonds
            else " (ligand unconstrained)"),
        "hydrogen_mass_amu": None if hydrogen_mass is None else as_quantity(hydrogen_mass, unit.amu).value_in_unit(unit.amu),
        "box_nm": None if box is None else [[round(x, 6) for x in v.value_in_unit(unit.nanometer)] for v in box],
        "system_charge": round(_total_charge(system), 6),
        "protein_file": None if protein is None else os.path.abspath(str(protein)),
    }
    progress(f"built: {counts['total']} atoms ({counts['protein']} protein, {counts['ligand']} ligand, "
             f"{info['n_waters']} waters, {counts['ions']} ions)")
    return BuiltSystem(topology, system, modeller.positions, info)


def _total_charge(system) -> float:
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            return sum(force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                       for i in range(force.getNumParticles()))
    return 0.0
