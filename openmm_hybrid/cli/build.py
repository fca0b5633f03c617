"""``openmm-hybrid build``: protein + ligand -> parametrised, solvated MM System folder."""
from pathlib import Path

from openmm import unit

from .._files import output_folder
from .._util import progress
from ..mm.builder import build_system
from .options import add_output_arguments


def cmd_build(args):
    inputs = [path for path in (args.protein, args.ligand) if path and Path(path).exists()]
    with output_folder(args.out, getattr(args, "overwrite", False), inputs, what="build") as work:
        built = build_system(protein=args.protein, ligand=args.ligand, ligand_resname=args.ligand_resname,
                             solvent=args.solvent, padding=args.padding * unit.nanometer,
                             ionic_strength=args.ionic_strength * unit.molar, ph=args.ph,
                             ligand_ff=args.ligand_ff, water_model=args.water_model,
                             hydrogen_mass=args.hmr, box_shape=args.box_shape,
                             allow_chain_breaks=getattr(args, "allow_chain_breaks", False))
        built.save(work)
    progress(f"wrote {args.out}/system.xml, topology.pdb, state.xml, build.json")
    return built


def add_parser(subparsers) -> None:
    """Add ``build`` to the main parser's subcommands."""
    p = subparsers.add_parser("build", help="protein + ligand -> parametrised, solvated MM system")
    p.add_argument("--protein", help="protein PDB or mmCIF file (omit for a ligand alone)")
    p.add_argument("--ligand", help="ligand SDF/MOL2 file or SMILES string")
    p.add_argument("--ligand-resname", default="LIG")
    p.add_argument("--ligand-ff", default="gaff2", help="gaff2 (default, AM1-BCC) or openff-2.2.0")
    p.add_argument("--solvent", choices=["explicit", "implicit", "vacuum"], default="explicit")
    p.add_argument("--water-model", default="tip3p")
    p.add_argument("--padding", type=float, default=1.0, help="solvent padding in nm (OpenMM meaning: box edge = solute diameter + padding, at least 2*padding; default 1.0)")
    p.add_argument("--ionic-strength", type=float, default=0.15, help="salt in molar (default 0.15)")
    p.add_argument("--box-shape", choices=["cube", "dodecahedron", "octahedron"], default="cube")
    p.add_argument("--ph", type=float, default=7.0)
    p.add_argument("--hmr", type=float, default=None, help="hydrogen mass repartitioning: H mass in amu")
    p.add_argument("--allow-chain-breaks", action="store_true",
                   help="build a protein with missing residues anyway (refused by default: the peptide bond "
                        "across the gap is stretched)")
    add_output_arguments(p, "output folder (refused if not empty, unless --overwrite)")
    p.set_defaults(func=cmd_build)
