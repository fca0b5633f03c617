"""``openmm-hybrid build``: protein + ligand (or a ligand series) -> parametrised, solvated MM System folder(s)."""
import argparse
from pathlib import Path

from openmm import unit

from .._files import output_folder
from .._util import progress
from ..errors import HybridError
from ..hybrid.ligand_check import ligand_checker
from ..mm.builder import BOX_SHAPES, build_system
from ..mm.implicit_solvent import GB_FORCES, IMPLICIT_MODELS
from ..mm.parameters import CHARGE_METHOD_COSTS, GAFF2_CHARGE_METHODS
from ..mm.series import SERIES_FILE, build_series
from .options import add_output_arguments


def build_options(args) -> dict:
    """The :func:`~openmm_hybrid.mm.builder.build_system` options the command line gives (ligand and protein aside)."""
    options = dict(ligand_resname=args.ligand_resname, solvent=args.solvent, padding=args.padding * unit.nanometer,
                   ionic_strength=args.ionic_strength * unit.molar, ph=args.ph, ligand_ff=args.ligand_ff,
                   water_model=args.water_model, hydrogen_mass=args.hmr, box_shape=args.box_shape,
                   charge_method=args.charge_method, cofactors=list(args.cofactor or ()),
                   forcefield_files=list(args.forcefield or ()), remove_waters=args.remove_waters,
                   remove_residues=list(args.remove_residues or ()), prepare=args.prepare,
                   add_missing_termini=args.add_missing_termini, keep_hydrogens=args.keep_hydrogens,
                   implicit_solvent=args.implicit_model, gb_force=args.gb_force,
                   allow_chain_breaks=args.allow_chain_breaks)
    if args.model is not None:
        emle = {"emle_model": args.emle_model} if args.emle_model is not None else {}
        model_options = {} if args.model_index is None else {"model_index": args.model_index}
        options["check_ligand"] = ligand_checker(args.model, args.embedding, model_options, **emle)
    elif args.embedding != "mechanical" or args.emle_model is not None:
        raise HybridError("--embedding and --emle-model check the ligand against a model: give --model NAME too")
    return options


def cmd_build(args):
    if args.ligands is not None:
        if args.ligand is not None or args.ligand_template is not None:
            raise HybridError("--ligands builds a series; --ligand and --ligand-template build one ligand: give one")
        result = build_series(args.protein, args.ligands, args.out, jobs=args.jobs, overwrite=args.overwrite,
                              resume=args.resume, **build_options(args))
        if result.failed:
            names = ", ".join(f"{e.name} ({e.stage})" for e in result.failed)
            raise HybridError(f"{len(result.failed)} of {len(result.ligands)} ligands failed: {names}; "
                              f"{len(result.built)} built; see {result.out / SERIES_FILE}")
        return result
    if args.ligand_name is not None or args.ligand_index is not None:
        if args.ligand is None:
            raise HybridError("--ligand-name and --ligand-index choose a molecule of the --ligand file")
    options = build_options(args)
    inputs = [path for path in (args.protein, args.ligand) if path and Path(path).exists()]
    with output_folder(args.out, args.overwrite, inputs, what="build") as work:
        built = build_system(protein=args.protein, ligand=args.ligand, ligand_name=args.ligand_name,
                             ligand_index=args.ligand_index, ligand_template=args.ligand_template, **options)
        built.save(work)
    progress(f"wrote {args.out}/system.xml, topology.pdb, state.xml, build.json"
             + (", prep.json" if built.reports else ""))
    return built


def _keep_hydrogens_help() -> str:
    return ("keep the protonation states the file's hydrogens give (default for every residue that carries "
            "hydrogens); --no-keep-hydrogens: choose every titratable residue's state at --ph")


def add_parser(subparsers) -> None:
    """Add ``build`` to the main parser's subcommands."""
    p = subparsers.add_parser("build", help="protein + ligand (or a ligand series) -> parametrised, solvated MM system",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    inputs = p.add_argument_group("inputs")
    inputs.add_argument("--protein", help="protein PDB or mmCIF file (omit for a ligand alone); crystal waters, ions "
                                          "and the cofactors given with --cofactor are kept")
    inputs.add_argument("--ligand", help="ligand SDF/MOL2 file or SMILES string")
    inputs.add_argument("--ligand-name", default=None, help="the molecule of a multi-molecule --ligand file, by title")
    inputs.add_argument("--ligand-index", type=int, default=None,
                        help="the molecule of a multi-molecule --ligand file, by position (from 0)")
    inputs.add_argument("--ligands", default=None, metavar="FILE",
                        help="a series: every molecule of this SDF/MOL2 file, each built into OUT/<its title>/, "
                             "parameters in parallel (--jobs); OUT/series.json lists each ligand's status")
    inputs.add_argument("--jobs", type=int, default=None, help="worker processes for a series' ligand parameters "
                                                               "(default: the number of cores)")
    inputs.add_argument("--resume", action="store_true",
                        help="series: keep the ligands already built in OUT (series.json) and build the others")
    inputs.add_argument("--ligand-resname", default="LIG",
                        help="residue name of the ligand (default LIG); with --ligand-template the ligand's residue "
                             "in the protein file")
    inputs.add_argument("--ligand-template", default=None, metavar="FILE_OR_SMILES",
                        help="take the ligand from the protein file (residue --ligand-resname): heavy atoms from the "
                             "file, bond orders, charges and hydrogens from this SMILES or SDF/MOL2")
    inputs.add_argument("--cofactor", action="append", metavar="FILE_OR_SMILES[:RESNAME]",
                        help="a small molecule of the protein file kept in MM (GAFF2, like the ligand); repeatable")
    inputs.add_argument("--forcefield", action="append", metavar="FILE.xml",
                        help="extra force-field file: templates for modified residues, metal sites; repeatable")
    inputs.add_argument("--remove-waters", action="store_true", help="drop the protein file's crystal waters")
    inputs.add_argument("--remove-residues", nargs="+", metavar="RESNAME", help="drop these residues from the protein file")
    prep = p.add_argument_group("structure preparation")
    prep.add_argument("--prepare", action="store_true",
                      help="repair a raw structure with PDBFixer: missing heavy atoms, missing residues inside chains, "
                           "alternate locations (highest occupancy), nonstandard residues PDBFixer knows; prep.json "
                           "says what changed")
    prep.add_argument("--add-missing-termini", action="store_true",
                      help="with --prepare, also add missing residues at chain ends")
    prep.add_argument("--keep-hydrogens", action=argparse.BooleanOptionalAction, default=None,
                      help=_keep_hydrogens_help())
    prep.add_argument("--ph", type=float, default=7.0, help="pH for residues without hydrogens (default 7)")
    params = p.add_argument_group("parameters")
    params.add_argument("--ligand-ff", default="gaff2", help="gaff2 (default) or openff-2.2.0")
    params.add_argument("--charge-method", choices=GAFF2_CHARGE_METHODS, default="bcc",
                        help="GAFF2 charges of the ligand and cofactors: "
                             + "; ".join(f"{k}: {v}" for k, v in CHARGE_METHOD_COSTS.items()))
    params.add_argument("--model", default=None,
                        help="check the ligand against this ML model (ani2x or a TorchScript file) before parametrising "
                             "it: unsupported elements or charge are refused at once")
    params.add_argument("--model-index", type=int, default=None, help="with --model ani2x: one network (0-7)")
    params.add_argument("--embedding", default="mechanical",
                        help="with --model: the embedding to check against (electrostatic: EMLE's elements)")
    params.add_argument("--emle-model", default=None, help="with --embedding electrostatic: the EMLE parameter file")
    solv = p.add_argument_group("solvent")
    solv.add_argument("--solvent", choices=["explicit", "implicit", "vacuum"], default="explicit")
    solv.add_argument("--implicit-model", choices=sorted(IMPLICIT_MODELS), default="obc2",
                      help="implicit solvent model (default obc2)")
    solv.add_argument("--gb-force", choices=GB_FORCES, default="native",
                      help="OBC2 as OpenMM's native GBSAOBCForce (default, same parameters as amber14's "
                           "implicit/obc2.xml, much faster) or that file's CustomGBForce; gbn2 needs custom")
    solv.add_argument("--water-model", default="tip3p")
    solv.add_argument("--padding", type=float, default=1.0, help="solvent padding in nm (OpenMM meaning: box edge = "
                                                                 "solute diameter + padding, at least 2*padding; default 1.0)")
    solv.add_argument("--ionic-strength", type=float, default=0.15, help="salt in molar (default 0.15)")
    solv.add_argument("--box-shape", choices=BOX_SHAPES, default="auto",
                      help="auto (default): rhombic dodecahedron (71%% of the cube's volume, same padding) where its "
                           "box is wide enough for the cutoff, else cube")
    solv.add_argument("--hmr", type=float, default=None, help="hydrogen mass repartitioning: H mass in amu")
    prep.add_argument("--allow-chain-breaks", action="store_true",
                      help="build a protein with missing residues anyway (refused by default: the peptide bond "
                           "across the gap is stretched; --prepare adds the missing residues)")
    add_output_arguments(p, "output folder (refused if not empty, unless --overwrite); a series: one subfolder "
                            "per ligand")
    p.set_defaults(func=cmd_build)
