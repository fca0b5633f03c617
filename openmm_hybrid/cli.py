"""Command-line interface: ``openmm-hybrid build | embed | energy | run | fe``.

Each step reads the previous step's directory and writes its own, so data flows one
way: build (MM system) -> embed (ML/MM system) -> run (trajectory) / energy.
"""
import argparse
import json
import sys
from pathlib import Path

from openmm import unit

from ._util import progress, set_quiet
from .errors import HybridError, SimulationError

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "t4-lysozyme"


def _platform_arg(parser):
    parser.add_argument("--platform", default=None, help="OpenMM platform (CPU, CUDA, Reference, ...)")


def cmd_build(args):
    from .builder import build_system
    built = build_system(protein=args.protein, ligand=args.ligand, ligand_resname=args.ligand_resname,
                         solvent=args.solvent, padding=args.padding * unit.nanometer,
                         ionic_strength=args.ionic_strength * unit.molar, ph=args.ph,
                         ligand_ff=args.ligand_ff, water_model=args.water_model,
                         hydrogen_mass=args.hmr, box_shape=args.box_shape)
    out = built.save(args.out)
    progress(f"wrote {out}/system.xml, topology.pdb, state.xml, build.json")
    return built


def embed_directory(input_dir, out_dir, region="resname LIG", model="ani2x", embedding="mechanical",
                    precision="single", ml_force_group=1, interpolate=False, model_index=None,
                    embedding_options=None, mts_ready=False):
    """Read a ``build`` directory, create the ML/MM System and write it to ``out_dir``.

    Writes ``system.xml``, ``topology.pdb``, ``state.xml`` and ``embed.json`` (``ml_atoms``,
    ``model``, ``embedding``, ``embedding_settings``, ``force_groups``, ...).
    ``embedding_options`` go to :func:`~openmm_hybrid.hybrid.create_hybrid_system` (EMLE settings).
    """
    from .builder import BuiltSystem, load_build
    from .hybrid import create_hybrid_system
    built = load_build(input_dir)
    if "ml_atoms" in built.info:
        raise HybridError(f"'{input_dir}' already holds an ML/MM system; embed a 'build' directory")
    progress(f"embedding region {region!r} with {model} ({embedding}, {precision} precision)")
    options = {} if model_index is None else {"model_index": model_index}
    hybrid = create_hybrid_system(built.topology, built.system, region, model=model, embedding=embedding,
                                  precision=precision, ml_force_group=ml_force_group,
                                  interpolate=interpolate, positions=built.positions, model_options=options,
                                  mts_ready=mts_ready, **(embedding_options or {}))
    info = dict(built.info)
    info.update(hybrid.metadata())
    info["source"] = str(Path(input_dir).resolve())
    out = BuiltSystem(built.topology, hybrid.system, built.positions, info, built.state).save(
        out_dir, info_name="embed.json")
    progress(f"wrote {out}/system.xml, topology.pdb, state.xml, embed.json "
             f"({len(hybrid.ml_atoms)} ML atoms, ML force group {hybrid.force_groups['ml']}"
             + (f"; MTS-ready: fast groups {hybrid.force_groups['fast']}, slow group {hybrid.force_groups['slow']}"
                if mts_ready else "") + ")")
    return hybrid


def cmd_embed(args):
    emle = {"emle_model": args.emle_model, "emle_alpha_mode": args.emle_alpha_mode,
            "emle_method": args.emle_method, "embedding_cutoff": args.embedding_cutoff,
            "emle_precision": args.emle_precision}
    given = {key: value for key, value in emle.items() if value is not None}
    if args.embedding != "electrostatic" and given:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise HybridError(f"{flags}: only used with --embedding electrostatic")
    embed_directory(args.input, args.out, region=args.region, model=args.model, embedding=args.embedding,
                    precision=args.precision, ml_force_group=args.ml_force_group,
                    interpolate=args.interpolate, model_index=args.model_index, embedding_options=given,
                    mts_ready=args.mts_ready)


def cmd_energy(args):
    from .builder import load_build
    from .energy import energy_decomposition
    built = load_build(args.input)
    result = energy_decomposition(built.system, built.positions, built.state.getPeriodicBoxVectors()
                                  if built.system.usesPeriodicBoundaryConditions() else None,
                                  platform=args.platform or "CPU")
    result = {"units": "kJ/mol", **result}
    print(json.dumps(result, indent=2))
    return result


def cmd_run(args):
    from .builder import load_build
    from .simulate import run_simulation
    out = Path(args.out)
    input_dir = args.input
    if input_dir is None:
        if not EXAMPLE_DIR.is_dir():
            raise HybridError(f"the bundled example is not at {EXAMPLE_DIR}; install from a source checkout "
                              f"(pip install -e .) or pass --input")
        progress(f"no --input: running the bundled example (T4 lysozyme L99A + p-xylene) in {out}")
        build_args = argparse.Namespace(protein=str(EXAMPLE_DIR / "receptor.pdb"),
                                        ligand=str(EXAMPLE_DIR / "p-xylene.sdf"), ligand_resname="LIG",
                                        solvent="explicit", padding=args.example_padding, ionic_strength=0.15,
                                        ph=7.0, ligand_ff="gaff2", water_model="tip3p", hmr=None,
                                        box_shape="dodecahedron",
                                        out=str(out / "build"))
        cmd_build(build_args)
        embed_directory(out / "build", out / "embed", region="resname LIG", model="ani2x",
                        mts_ready=args.mts is not None)
        input_dir = out / "embed"
    built = load_build(input_dir)
    if "ml_atoms" not in built.info:
        progress(f"note: '{input_dir}' holds a pure MM system (no embed.json); running it as is")
    force_groups = None
    if args.mts is not None:
        from .mts import mts_force_groups
        force_groups = mts_force_groups(built.info)
    box = built.state.getPeriodicBoxVectors() if built.system.usesPeriodicBoundaryConditions() else None
    result = run_simulation(built.system, built.topology, built.positions, out, steps=args.steps,
                            timestep=args.timestep * unit.femtosecond, temperature=args.temperature * unit.kelvin,
                            platform=args.platform, minimize=not args.no_minimize,
                            minimize_iterations=args.minimize_iterations,
                            report_interval=args.report_interval, box_vectors=box, seed=args.seed,
                            mts_substeps=args.mts, force_groups=force_groups)
    print(f"{result['ns_per_day']:.4f} ns/day ({result['ms_per_step']:.2f} ms/step on {result['platform']}); "
          f"output in {out}")
    return result


def make_parser():
    parser = argparse.ArgumentParser(prog="openmm-hybrid", description="ML/MM embedding for OpenMM")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="protein + ligand -> parametrised, solvated MM system")
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
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("embed", help="MM system -> ML/MM system")
    p.add_argument("--input", required=True, help="directory written by 'build'")
    p.add_argument("--region", default="resname LIG", help="MDTraj selection of the ML region")
    p.add_argument("--model", default="ani2x", help="ani2x or a TorchScript file")
    p.add_argument("--model-index", type=int, default=None, help="ANI-2x: one network (0-7) instead of the ensemble")
    p.add_argument("--embedding", default="mechanical", help="mechanical (default) or electrostatic (EMLE)")
    p.add_argument("--emle-model", default=None, help="electrostatic: EMLE parameter file (.mat, emle-models)")
    p.add_argument("--emle-alpha-mode", choices=["species", "reference"], default=None,
                   help="electrostatic: EMLE polarisability mode (default species)")
    p.add_argument("--emle-method", choices=["electrostatic", "nonpol", "mm"], default=None,
                   help="electrostatic: static + induced (default), static only, or MM charges")
    p.add_argument("--embedding-cutoff", type=float, default=None,
                   help="electrostatic: embedding cutoff in nm (default 1.0; switched over its last 0.2 nm)")
    p.add_argument("--emle-precision", choices=["single", "double"], default=None,
                   help="electrostatic: EMLE precision (default double, whatever --precision says)")
    p.add_argument("--precision", choices=["single", "double"], default="single")
    p.add_argument("--ml-force-group", type=int, default=1)
    p.add_argument("--interpolate", action="store_true", help="add lambda_interpolate (0 = MM, 1 = ML/MM)")
    p.add_argument("--mts-ready", action="store_true",
                   help="prepare for multiple-time-step runs ('run --mts N'): MM force groups (fast) carry the full "
                        "MM Hamiltonian incl. the region's own MM terms; --ml-force-group becomes the slow group "
                        "(ML minus the region's internal MM energy); the total energy is unchanged")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("energy", help="print the potential energy and its parts as JSON (kJ/mol)")
    p.add_argument("--input", required=True)
    _platform_arg(p)
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("run", help="minimise + Langevin MD (bundled example when --input is omitted)")
    p.add_argument("--input", default=None, help="directory written by 'embed' (or 'build')")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--timestep", type=float, default=1.0,
                   help="fs (default 1); with --mts N this is the OUTER step (the ML force is evaluated once per "
                        "--timestep, the MM forces every --timestep/N)")
    p.add_argument("--mts", type=int, default=None, metavar="N",
                   help="multiple-time-step BAOAB-RESPA Langevin with N inner substeps per outer --timestep "
                        "(needs a system embedded with --mts-ready); --steps counts outer steps")
    p.add_argument("--temperature", type=float, default=300.0, help="K")
    p.add_argument("--report-interval", type=int, default=None)
    p.add_argument("--no-minimize", action="store_true")
    p.add_argument("--minimize-iterations", type=int, default=200,
                   help="L-BFGS iterations at most (default 200; 0: to convergence, slow for solvated systems)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--example-padding", type=float, default=1.0, help=argparse.SUPPRESS)
    _platform_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_run)

    from .freeenergy.cli import add_fe_parser
    add_fe_parser(sub)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    # --quiet holds for this command only: main() is also called in-process (tests, scripts)
    was_quiet = set_quiet(args.quiet)
    try:
        args.func(args)
    except (HybridError, SimulationError) as exc:
        print(f"openmm-hybrid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        set_quiet(was_quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
