"""``openmm-hybrid embed``: MM System folder -> ML/MM System folder."""
from pathlib import Path

import yaml

from .._files import output_folder
from .._util import progress
from ..errors import HybridError, ModelError
from ..hybrid import create_hybrid_system
from ..mm.system_files import BuiltSystem, load_build
from .options import add_output_arguments


def embed_directory(input_dir, out_dir, region="resname LIG", model="ani2x", embedding="mechanical",
                    precision="single", ml_force_group=1, interpolate=False, model_index=None,
                    embedding_options=None, mts_ready=False, overwrite=False, model_options=None):
    """Read a ``build`` directory, create the ML/MM System and write it to ``out_dir``.

    Writes ``system.xml``, ``topology.pdb``, ``state.xml`` and ``embed.json`` (``ml_atoms``,
    ``model``, ``embedding``, ``embedding_settings``, ``force_groups``, ...) through
    :func:`~openmm_hybrid._files.output_folder`: ``out_dir`` may not be ``input_dir`` and must be
    empty unless ``overwrite``.  ``embedding_options`` go to
    :func:`~openmm_hybrid.hybrid.create_hybrid_system` (EMLE settings), ``model_options`` to the
    model's loader (e.g. ``energy_scale`` of a NequIP file).
    """
    with output_folder(out_dir, overwrite, [input_dir], what="embed") as work:
        return _embed(input_dir, work, out_dir, region, model, embedding, precision, ml_force_group, interpolate,
                      model_index, embedding_options, mts_ready, model_options)


def _embed(input_dir, work, out_dir, region, model, embedding, precision, ml_force_group, interpolate, model_index,
           embedding_options, mts_ready, model_options):
    built = load_build(input_dir)
    if "ml_atoms" in built.info:
        raise HybridError(f"'{input_dir}' already holds an ML/MM system; embed a 'build' directory")
    progress(f"embedding region {region!r} with {model} ({embedding}, {precision} precision)")
    options = dict(model_options or {})
    if model_index is not None:
        options["model_index"] = model_index
    hybrid = create_hybrid_system(built.topology, built.system, region, model=model, embedding=embedding,
                                  precision=precision, ml_force_group=ml_force_group,
                                  interpolate=interpolate, positions=built.positions, model_options=options,
                                  mts_ready=mts_ready, **(embedding_options or {}))
    info = dict(built.info)
    info.update(hybrid.metadata())
    info["source"] = str(Path(input_dir).resolve())
    BuiltSystem(built.topology, hybrid.system, built.positions, info, built.state).save(work, info_name="embed.json")
    progress(f"wrote {out_dir}/system.xml, topology.pdb, state.xml, embed.json "
             f"({len(hybrid.ml_atoms)} ML atoms, ML force group {hybrid.force_groups['ml']}"
             + (f"; MTS-ready: fast groups {hybrid.force_groups['fast']}, slow group {hybrid.force_groups['slow']}"
                if mts_ready else "") + ")")
    return hybrid


def parse_model_options(items) -> dict:
    """``KEY=VALUE`` strings -> options; values are read as YAML (numbers, lists, true/false)."""
    options = {}
    for item in items or []:
        key, separator, raw = item.partition("=")
        if not separator or not key:
            raise ModelError(f"--model-option {item!r}: expected KEY=VALUE, e.g. energy_scale=4.184")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ModelError(f"--model-option {item!r}: the value is not readable ({exc})") from exc
    return options


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
                    mts_ready=args.mts_ready, overwrite=args.overwrite,
                    model_options=parse_model_options(args.model_option))


def add_parser(subparsers) -> None:
    """Add ``embed`` to the main parser's subcommands."""
    p = subparsers.add_parser("embed", help="MM system -> ML/MM system")
    p.add_argument("--input", required=True, help="directory written by 'build'")
    p.add_argument("--region", default="resname LIG", help="MDTraj selection of the ML region")
    p.add_argument("--model", default="ani2x",
                   help="ani2x, a published model's name (aimnet2, mace-off23-small, aceff-1.1, ...) or a model "
                        "file (TorchScript .pt, AIMNet2 .pt/.jpt, MACE .model, TorchMD-Net .ckpt, NequIP/Allegro "
                        "deployed .pth)")
    p.add_argument("--model-index", type=int, default=None,
                   help="one ensemble member: ANI-2x network 0-7, AIMNet2 member 0-3")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="a model option (repeatable), e.g. energy_scale=4.184 length_scale=0.1 for a NequIP file "
                        "in kcal/mol and angstrom (docs/models.md lists each family's options)")
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
    add_output_arguments(p, "output folder (not the --input folder; refused if not empty, unless --overwrite)")
    p.set_defaults(func=cmd_embed)
