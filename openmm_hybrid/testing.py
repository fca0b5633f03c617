"""Helpers shared by openmm-hybrid's tests and benchmarks.

- where the model files live on a machine without network access (:func:`use_shared_models`,
  :func:`emle_model_path`, :func:`ani_weights_available`);
- :func:`compute`: energy and forces of a System in one call;
- :class:`EvaluationCounter`: a TorchScript energy term that counts its own evaluations;
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
