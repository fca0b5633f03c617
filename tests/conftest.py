"""Test configuration: the two test tiers, and fixtures shared by several test files.

Tiers: ``python -m pytest tests`` runs the default tier; tests marked ``slow`` (long physics runs:
NVE energy conservation, the free-energy workflows on ANI-2x, the bundled example) run only with
``--runslow`` (``.ci/run`` runs both).

ANI-2x weights and the EMLE parameter file are found as :mod:`openmm_hybrid.testing` says
(``TORCHANI_DATA_DIR``, ``OPENMM_HYBRID_EMLE_MODEL``, else ``../shared/models``); tests that need
them are skipped, with the reason, when they are absent.  Ligand parameters are cached in one
temporary directory per test session, so AM1-BCC runs once per molecule and never touches the
user's cache.
"""
import os
import tempfile

import pytest

from openmm_hybrid.testing import ani_weights_available, use_shared_models

use_shared_models()
if "OPENMM_HYBRID_CACHE" not in os.environ:
    os.environ["OPENMM_HYBRID_CACHE"] = tempfile.mkdtemp(prefix="openmm-hybrid-test-cache-")

import torch  # noqa: E402

from helpers import EXAMPLES  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true",
                     help="also run the slow tier (NVE energy conservation, free-energy workflows, the example)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long physics run, only with --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow tier: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
    from openmm_hybrid.mm import build_system
    return build_system(ligand=str(example_dir / "p-xylene.sdf"), solvent="explicit", padding=1.2)


@pytest.fixture(scope="session")
def complex_vacuum(example_dir):
    """T4 lysozyme L99A + p-xylene, Amber ff14SB + GAFF2, no solvent (NoCutoff)."""
    from openmm_hybrid.mm import build_system
    return build_system(protein=str(example_dir / "receptor.pdb"), ligand=str(example_dir / "p-xylene.sdf"),
                        solvent="vacuum")
