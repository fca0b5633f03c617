"""Helpers shared by openmm-hybrid's tests and benchmarks.

- where the model files live on a machine without network access (:func:`use_shared_models`,
  :func:`emle_model_path`, :func:`ani_weights_available`);
- :func:`compute`: energy and forces of a System in one call;
- :class:`EvaluationCounter`: a TorchScript energy term that counts its own evaluations;
- small random models of the published families in their users' formats (``write_random_*``,
  :func:`write_compiled_nequip`).
- :func:`write_series_inputs`: a tiny protein (alanine dipeptide) and a ligand series SDF for
  free-energy campaigns.

Model files are never part of the project: ANI-2x weights are found through ``TORCHANI_DATA_DIR``
and the EMLE parameter file (GPL) through ``OPENMM_HYBRID_EMLE_MODEL``; when those are unset, a
``shared/models`` folder beside the source tree (the layout of this project's machines) is used.
"""
import os
from pathlib import Path
from typing import Optional

import numpy as np
import openmm
import torch
from openmm import unit

from .models.ani import neurochem_info_file, torchani_data_dir

EMLE_MODEL_FILE = "emle_qm7_aev__v2024-10-22_88014f5.mat"
SOURCE_TREE = Path(__file__).resolve().parent.parent


def shared_models_dir() -> Path:
    """``../shared/models`` beside the source tree (may not exist)."""
    return SOURCE_TREE.parent / "shared" / "models"


def use_shared_models() -> None:
    """Point torchani at the shared ANI-2x files when ``TORCHANI_DATA_DIR`` is unset (call before
    loading models), and silence torchani's note about its compiled extensions."""
    shared = shared_models_dir() / "torchani"
    if not os.environ.get("TORCHANI_DATA_DIR") and shared.is_dir():
        os.environ["TORCHANI_DATA_DIR"] = str(shared)
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")


def ani_weights_available() -> bool:
    """Whether ANI-2x weights can be loaded without a download."""
    try:
        return neurochem_info_file() is not None or \
            (torchani_data_dir() / "StateDicts" / "ani2x_state_dict.pt").is_file()
    except ImportError:  # no torchani
        return False


def emle_model_path() -> Path:
    """The EMLE parameter file: ``$OPENMM_HYBRID_EMLE_MODEL``, else the shared one."""
    return Path(os.environ.get("OPENMM_HYBRID_EMLE_MODEL") or shared_models_dir() / "emle" / EMLE_MODEL_FILE)


def emle_test_data() -> Path:
    """emle-engine's ADP-in-water inputs: ``$OPENMM_HYBRID_EMLE_TEST_DATA``, else beside the EMLE file."""
    return Path(os.environ.get("OPENMM_HYBRID_EMLE_TEST_DATA") or emle_model_path().parent / "adp-in-water")


def compute(system: openmm.System, positions, platform: str = "Reference", box=None,
            parameters: Optional[dict] = None, groups=-1, properties: Optional[dict] = None):
    """Energy (kJ/mol) and forces (kJ/mol/nm, NumPy array) of ``system`` at ``positions``."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                             properties or {})
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    for name, value in (parameters or {}).items():
        context.setParameter(name, value)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    return energy, forces


class EvaluationCounter(torch.nn.Module):
    """Zero-force energy term whose energy is the number of times it has been evaluated.

    Put into a force group with :func:`openmm_hybrid.forces.create_module_force` (its name must be
    in ``MODULE_FORCE_NAMES``), it tells how often an integrator evaluates that group; reading its
    energy evaluates it once more.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.float64))

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None,
                scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        self.calls.add_(1.0)
        return self.calls.clone() + 0.0 * positions.sum()


# Small randomly initialised models of the published families, built with each family's own
# package and saved in the format its users get (tests and benchmarks load them through
# openmm_hybrid.models.load_model).  Elements: what drug-like ligands contain.
FAMILY_TEST_ELEMENTS = [1, 6, 7, 8, 9, 15, 16, 17, 35, 53]


def write_random_aimnet2(path, seed: int = 0) -> Path:
    """A small AIMNet2 (aimnet's wB97M-D3 architecture: Coulomb and D3 included), exported with
    ``aimnet export`` (aimnet's state-dict ``.pt`` format, as the published files)."""
    import copy

    import yaml
    from aimnet.config import build_module
    from aimnet.train.export_model import export_model

    path = Path(path)
    folder = path.parent
    config = yaml.safe_load((Path(build_module.__code__.co_filename).parent / "models" /
                             "aimnet2_dftd3_wb97m.yaml").read_text())
    kwargs = config["kwargs"]
    kwargs.update(nfeature=4, ncomb_v=4, aim_size=32, hidden=[[32, 24], [32, 24], [32, 24, 24]])
    kwargs["aev"]["nshifts_s"] = 8
    kwargs["outputs"]["energy_mlp"]["kwargs"].update(n_in=32)
    kwargs["outputs"]["energy_mlp"]["kwargs"]["mlp"]["hidden"] = [16]
    torch.manual_seed(seed)
    model = build_module(copy.deepcopy(config))
    (folder / "aimnet2_small.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save(model.state_dict(), folder / "aimnet2_small_weights.pt")
    # atomic self energies (eV), the order of magnitude of the published ones
    sae = {z: -13.6 * z for z in FAMILY_TEST_ELEMENTS}
    (folder / "aimnet2_small.sae").write_text("".join(f"{z}: {e}\n" for z, e in sae.items()))
    with _quiet():
        export_model.main([str(folder / "aimnet2_small_weights.pt"), str(path), "--model",
                           str(folder / "aimnet2_small.yaml"), "--sae", str(folder / "aimnet2_small.sae")],
                          standalone_mode=False)
    return path


def write_random_mace(path, seed: int = 0, dtype=torch.float64) -> Path:
    """A small ScaleShiftMACE (MACE-OFF's architecture), saved with ``torch.save`` as a ``.model``."""
    from mace import modules  # first: mace sets what e3nn 0.4.4 needs before e3nn is imported
    from e3nn import o3

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(seed)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=5.0, num_bessel=4, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
            interaction_cls_first=block, num_interactions=2, num_elements=len(FAMILY_TEST_ELEMENTS),
            hidden_irreps=o3.Irreps("8x0e + 8x1o"), MLP_irreps=o3.Irreps("8x0e"),
            atomic_energies=np.array([-13.6 * z for z in FAMILY_TEST_ELEMENTS]), avg_num_neighbors=8.0,
            atomic_numbers=FAMILY_TEST_ELEMENTS, correlation=3, gate=torch.nn.functional.silu,
            atomic_inter_scale=1.5, atomic_inter_shift=0.1)
    finally:
        torch.set_default_dtype(previous)
    torch.save(model, path)
    return Path(path)


def write_random_tensornet(path, seed: int = 0) -> Path:
    """A small TensorNet (AceFF's architecture) saved as a TorchMD-Net checkpoint (``.ckpt``)."""
    from torchmdnet.models.model import create_model

    args = {"model": "tensornet", "embedding_dimension": 16, "num_layers": 2, "num_rbf": 8,
            "rbf_type": "expnorm", "trainable_rbf": False, "activation": "silu", "cutoff_lower": 0.0,
            "cutoff_upper": 5.0, "max_z": 54, "max_num_neighbors": 64, "equivariance_invariance_group": "O(3)",
            "static_shapes": False, "derivative": False, "atom_filter": -1, "prior_model": None,
            "output_model": "Scalar", "reduce_op": "sum", "precision": 32, "box_vecs": None,
            "neighbor_embedding": True, "aggr": "add", "attn_activation": "silu", "num_heads": 2,
            "distance_influence": "both", "vector_cutoff": False, "check_errors": False,
            "remove_ref_energy": False}
    torch.manual_seed(seed)
    model = create_model(dict(args))
    with torch.no_grad():  # training would move these from their initial zeros
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    torch.save({"hyper_parameters": args, "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
               path)
    return Path(path)


# nequip 0.6's model settings for the random NequIP and Allegro models: small, every element of
# FAMILY_TEST_ELEMENTS, per-species energy shifts of the order of real ones (eV), model_dtype as asked
NEQUIP_CONFIG = {
    "r_max": 4.0, "avg_num_neighbors": 8.0, "default_dtype": "float64", "seed": 0, "dataset_seed": 0,
    "global_rescale_scale": 2.0,
}
NEQUIP_ARCHITECTURES = {
    "nequip": {"num_layers": 2, "l_max": 1, "parity": True, "num_features": 8, "num_basis": 4,
               "invariant_layers": 1, "invariant_neurons": 8},
    "allegro": {"model_builders": ["allegro.model.Allegro", "PerSpeciesRescale", "StressForceOutput",
                                   "RescaleEnergyEtc"],
                "num_layers": 1, "l_max": 1, "parity": "o3_full", "num_bessels_per_basis": 4,
                "num_tensor_features": 4, "two_body_latent_mlp_latent_dimensions": [16, 16],
                "two_body_latent_mlp_nonlinearity": "silu", "latent_mlp_latent_dimensions": [16],
                "latent_mlp_nonlinearity": "silu", "env_embed_mlp_latent_dimensions": [],
                "env_embed_mlp_nonlinearity": None, "edge_eng_mlp_latent_dimensions": [8],
                "edge_eng_mlp_nonlinearity": None},
}


def write_random_nequip(path, architecture: str = "nequip", model_dtype: str = "float64", seed: int = 0) -> Path:
    """A small NequIP or Allegro model (nequip 0.6 / nequip-allegro 0.3) deployed with ``nequip-deploy
    build --train-dir`` (the TorchScript file LAMMPS and openmm-hybrid read).

    The randomly initialised model and its training config are written as a training folder
    would hold them (``config.yaml``, ``best_model.pth``), then deployed by nequip's own
    ``nequip-deploy build`` code, in a subprocess: nequip sets process-wide torch defaults
    (dtype, JIT settings).
    """
    import subprocess
    import sys

    path = Path(path)
    train_dir = path.parent / f"{path.stem}_training"
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")  # e3nn 0.4.4 pickles its constants
    script = (f"from openmm_hybrid.testing import write_nequip_training_folder as write; "
              f"write({str(train_dir)!r}, {architecture!r}, {model_dtype!r}, {seed}); "
              f"from nequip.scripts import deploy; "
              f"deploy.main(['build', '--train-dir', {str(train_dir)!r}, {str(path)!r}])")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"writing the random {architecture} model failed:\n{result.stderr[-3000:]}")
    return path


def write_random_allegro(path, seed: int = 0) -> Path:
    """A small Allegro model (nequip-allegro 0.3), deployed as :func:`write_random_nequip` does."""
    return write_random_nequip(path, "allegro", seed=seed)


def write_nequip_training_folder(folder, architecture: str, model_dtype: str, seed: int) -> None:
    """``config.yaml`` and ``best_model.pth`` of a randomly initialised nequip 0.6 model (run in a
    subprocess of :func:`write_random_nequip`: it sets nequip's process-wide defaults)."""
    import yaml
    from nequip.model import model_from_config
    from nequip.scripts.train import default_config
    from nequip.utils import Config
    from nequip.utils._global_options import _set_global_options

    symbols = [openmm.app.element.Element.getByAtomicNumber(z).symbol for z in FAMILY_TEST_ELEMENTS]
    config = dict(default_config, **NEQUIP_CONFIG, **NEQUIP_ARCHITECTURES[architecture])
    config.update(chemical_symbols=symbols, model_dtype=model_dtype, seed=seed,
                  per_species_rescale_shifts=[-13.6 * z for z in FAMILY_TEST_ELEMENTS],
                  per_species_rescale_scales=[1.0 + 0.1 * i for i in range(len(symbols))])
    config = Config.from_dict(config)
    _set_global_options(config)
    torch.manual_seed(seed)
    model = model_from_config(config, initialize=True)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "best_model.pth")
    # yaml.dump, as nequip writes it (its JIT settings are tuples)
    (folder / "config.yaml").write_text(yaml.dump(Config.as_dict(config)))


# nequip >= 0.7: models are made by training (nequip-train, Lightning), so the "random" model of
# these versions is one trained for one epoch on a few EMT frames of a small H C N O molecule
NEQUIP_TRAINED_TYPES = ["H", "C", "N", "O"]
NEQUIP_TRAINED_MODELS = {
    "nequip": {"_target_": "nequip.model.NequIPGNNModel", "num_layers": 2, "num_features": 8,
               "radial_mlp_depth": 1, "radial_mlp_width": 8},
    "allegro": {"_target_": "allegro.model.AllegroModel",
                "per_edge_type_cutoff": {"H": 3.0, "C": 4.0, "N": 4.0, "O": 3.5},
                "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 4},
                "radial_chemical_embed_dim": 8, "scalar_embed_mlp_hidden_layers_depth": 1,
                "scalar_embed_mlp_hidden_layers_width": 8, "num_layers": 1, "num_scalar_features": 8,
                "num_tensor_features": 4, "allegro_mlp_hidden_layers_depth": 1,
                "allegro_mlp_hidden_layers_width": 8, "readout_mlp_hidden_layers_depth": 1,
                "readout_mlp_hidden_layers_width": 8},
}


def write_compiled_nequip(folder, architecture: str = "nequip", model_dtype: str = "float64"):
    """A small NequIP or Allegro model of nequip >= 0.7: trained for one epoch with ``nequip-train``
    on EMT frames of 2-aminoethanol (H C N O), then compiled with ``nequip-compile --mode
    torchscript`` (the ``.nequip.pth`` file openmm-hybrid reads), in ``model_dtype``.

    Returns
    -------
    (Path, Path)
        The compiled file and the training checkpoint it was compiled from (what openmm-ml
        1.8's ``nequip`` potential reads).
    """
    import subprocess
    import sys

    import yaml
    from ase import Atoms
    from ase.calculators.emt import EMT
    from ase.io import write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # 2-aminoethanol, angstrom
    numbers = [6, 6, 8, 1, 1, 1, 1, 1, 1, 7]
    base = np.array([[0, 0, 0], [1.52, 0, 0], [2.0, 1.35, 0], [-0.4, 1.0, 0], [-0.4, -0.5, 0.9],
                     [-0.4, -0.5, -0.9], [1.9, -0.5, 0.9], [1.9, -0.5, -0.9], [2.9, 1.3, 0], [0.3, 2.0, 1.0]])
    frames = []
    for _ in range(12):
        atoms = Atoms(numbers=numbers, positions=base + 0.1 * rng.standard_normal(base.shape))
        atoms.calc = EMT()
        atoms.get_potential_energy()
        frames.append(atoms)
    write(folder / "frames.xyz", frames)
    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": 4}
    model = {"seed": 1, "model_dtype": model_dtype, "type_names": NEQUIP_TRAINED_TYPES, "r_max": 4.0,
             "l_max": 1, "parity": True, "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
             "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
             "per_type_energy_scales": "${training_data_stats:forces_rms}", **NEQUIP_TRAINED_MODELS[architecture]}
    config = {
        "run": ["train"], "seed": 1,
        "data": {"_target_": "nequip.data.datamodule.ASEDataModule", "seed": 1,
                 "split_dataset": {"file_path": str(folder / "frames.xyz"), "train": 8, "val": 4},
                 "transforms": [{"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                                 "model_type_names": NEQUIP_TRAINED_TYPES,
                                 "chemical_species_to_atom_type_map": {t: t for t in NEQUIP_TRAINED_TYPES}},
                                {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": 4.0}],
                 "train_dataloader": loader, "val_dataloader": loader,
                 "stats_manager": {"_target_": "nequip.data.CommonDataStatisticsManager",
                                   "type_names": NEQUIP_TRAINED_TYPES}},
        "trainer": {"_target_": "lightning.Trainer", "max_epochs": 1, "logger": False, "enable_progress_bar": False,
                    "callbacks": [{"_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "dirpath": str(folder / f"training_{model_dtype}"), "save_last": True}]},
        "training_module": {"_target_": "nequip.train.EMALightningModule",
                            "loss": {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                                     "coeffs": {"total_energy": 1.0, "forces": 1.0}},
                            "val_metrics": {"_target_": "nequip.train.EnergyForceMetrics",
                                            "coeffs": {"total_energy_mae": 1.0, "forces_mae": 1.0}},
                            "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01},
                            "model": model},
    }
    (folder / "train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    checkpoint = folder / f"training_{model_dtype}" / "last.ckpt"
    compiled = folder / f"{architecture}_{model_dtype}.nequip.pth"
    bin_dir = Path(sys.executable).parent
    for command in ([str(bin_dir / "nequip-train"), "-cp", str(folder), "-cn", "train",
                     f"hydra.run.dir={folder / f'training_{model_dtype}'}"],
                    [str(bin_dir / "nequip-compile"), str(checkpoint), str(compiled), "--mode", "torchscript",
                     "--device", "cpu", "--target", "ase"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed:\n{result.stderr[-3000:]}")
    return compiled, checkpoint


def _quiet():
    import contextlib
    import io
    return contextlib.redirect_stdout(io.StringIO())


def write_series_inputs(folder, ligands, series_name: str = "series.sdf") -> Path:
    """Alanine dipeptide as ``protein.pdb`` (openmmtools' test file) and ``ligands`` (pairs of
    name and SMILES) as a multi-molecule SDF, each conformer centred 6 A above the dipeptide.

    Returns
    -------
    Path
        The SDF file.
    """
    import openmmtools
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from rdkit.Geometry import Point3D
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    protein = Path(openmmtools.__file__).parent / "data" / "alanine-dipeptide-gbsa" / "alanine-dipeptide.pdb"
    (folder / "protein.pdb").write_text(protein.read_text())
    writer = Chem.SDWriter(str(folder / series_name))
    for name, smiles in ligands:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=7)
        conformer = mol.GetConformer()
        xyz = conformer.GetPositions()
        for i, point in enumerate(xyz - xyz.mean(0) + [4.5, 4.5, 6.0]):
            conformer.SetAtomPosition(i, Point3D(*point))
        mol.SetProp("_Name", name)
        writer.write(mol)
    writer.close()
    return folder / series_name
