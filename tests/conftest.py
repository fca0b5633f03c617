"""Shared test fixtures.

ANI-2x weights: tests that need them find them through ``TORCHANI_DATA_DIR`` (``.ci/run``
points it at ``../shared/models/torchani``); when it is unset and a ``shared`` checkout sits
beside the repository, that is used.  Without weights those tests are skipped with a reason.

EMLE parameters: tests of electrostatic embedding read the EMLE model file named by
``OPENMM_HYBRID_EMLE_MODEL`` (default ``../shared/models/emle/emle_qm7_aev__v2024-10-22_88014f5.mat``
beside the repository) and the adp-in-water inputs from ``adp-in-water/`` next to it
(``OPENMM_HYBRID_EMLE_TEST_DATA`` overrides); they are skipped, with the reason, when absent.
The file is GPL-licensed and is never copied into the project.

Ligand parameters are cached in one temporary directory per test session, so AM1-BCC runs
once per molecule and never touches the user's cache.
"""
import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

_shared = REPO.parent / "shared" / "models" / "torchani"
if not os.environ.get("TORCHANI_DATA_DIR") and _shared.is_dir():
    os.environ["TORCHANI_DATA_DIR"] = str(_shared)
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
if "OPENMM_HYBRID_CACHE" not in os.environ:
    os.environ["OPENMM_HYBRID_CACHE"] = tempfile.mkdtemp(prefix="openmm-hybrid-test-cache-")

import torch  # noqa: E402  (before openmmtorch)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def ani_weights_available() -> bool:
    from openmm_hybrid.models.ani import neurochem_info_file, torchani_data_dir
    try:
        return neurochem_info_file() is not None or (torchani_data_dir() / "StateDicts" / "ani2x_state_dict.pt").is_file()
    except ImportError:  # no torchani (e.g. a GPU machine that runs only tests/test_cuda.py)
        return False


requires_ani = pytest.mark.skipif(not ani_weights_available(),
                                  reason="ANI-2x weights not found: set TORCHANI_DATA_DIR to a directory "
                                         "with Neurochem/ani-2x_8x.info (e.g. ../shared/models/torchani)")


@pytest.fixture(scope="session")
def ani_double():
    if not ani_weights_available():
        pytest.skip("ANI-2x weights not found (TORCHANI_DATA_DIR)")
    from openmm_hybrid.models import load_model
    return load_model("ani2x", precision="double")


@pytest.fixture(scope="session")
def ani_single():
    if not ani_weights_available():
        pytest.skip("ANI-2x weights not found (TORCHANI_DATA_DIR)")
    from openmm_hybrid.models import load_model
    return load_model("ani2x", precision="single")


@pytest.fixture(scope="session")
def example_dir():
    return EXAMPLES / "t4-lysozyme"


@pytest.fixture(scope="session")
def pxylene_water(example_dir):
    """p-xylene (GAFF2/AM1-BCC) in a TIP3P box with PME: 1280 atoms."""
    from openmm_hybrid.builder import build_system
    return build_system(ligand=str(example_dir / "p-xylene.sdf"), solvent="explicit", padding=1.2)


@pytest.fixture(scope="session")
def complex_vacuum(example_dir):
    """T4 lysozyme L99A + p-xylene, Amber ff14SB + GAFF2, no solvent (NoCutoff)."""
    from openmm_hybrid.builder import build_system
    return build_system(protein=str(example_dir / "receptor.pdb"), ligand=str(example_dir / "p-xylene.sdf"),
                        solvent="vacuum")


EMLE_MODEL_FILE = "emle_qm7_aev__v2024-10-22_88014f5.mat"


def emle_model_path() -> Path:
    return Path(os.environ.get("OPENMM_HYBRID_EMLE_MODEL") or REPO.parent / "shared" / "models" / "emle" / EMLE_MODEL_FILE)


def emle_test_data() -> Path:
    return Path(os.environ.get("OPENMM_HYBRID_EMLE_TEST_DATA") or emle_model_path().parent / "adp-in-water")


requires_emle = pytest.mark.skipif(not emle_model_path().is_file(),
                                   reason=f"EMLE model file not found at {emle_model_path()}: set "
                                          f"OPENMM_HYBRID_EMLE_MODEL to emle-models' {EMLE_MODEL_FILE}")


def compute(system, positions, platform="Reference", box=None, parameters=None, groups=-1):
    """Energy (kJ/mol) and forces (kJ/mol/nm, numpy) of ``system``."""
    import numpy as np
    import openmm
    from openmm import unit
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    for name, value in (parameters or {}).items():
        context.setParameter(name, value)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    return energy, forces
