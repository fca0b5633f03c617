"""Test helpers: paths, and markers for tests that need files this machine may not have.

Shared with the benchmarks: :mod:`openmm_hybrid.testing` (model files, ``compute``,
``EvaluationCounter``) and :mod:`openmm_hybrid.analysis.energy_conservation` (NVE drift).
"""
import os
from collections import Counter
from pathlib import Path

import pytest

from openmm_hybrid.mm.parameters import ambertools_available
from openmm_hybrid.testing import EMLE_MODEL_FILE, ani_weights_available, emle_model_path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

requires_ani = pytest.mark.skipif(not ani_weights_available(),
                                  reason="ANI-2x weights not found: set TORCHANI_DATA_DIR to a directory "
                                         "with Neurochem/ani-2x_8x.info (e.g. ../shared/models/torchani)")
requires_emle = pytest.mark.skipif(not emle_model_path().is_file(),
                                   reason=f"EMLE model file not found at {emle_model_path()}: set "
                                          f"OPENMM_HYBRID_EMLE_MODEL to emle-models' {EMLE_MODEL_FILE}")
requires_ambertools = pytest.mark.skipif(not ambertools_available(),
                                         reason="AmberTools (antechamber, sqm, parmchk2, tleap) not found")


_COUNTING_ANTECHAMBER = """#!/bin/sh
# Counts antechamber runs, and the sqm runs they make (sqm writes sqm.out in the working folder).
echo antechamber >> "$OPENMM_HYBRID_TEST_COUNT_FILE"
PATH="$OPENMM_HYBRID_TEST_REAL_PATH" antechamber "$@"
status=$?
[ -f sqm.out ] && echo sqm >> "$OPENMM_HYBRID_TEST_COUNT_FILE"
exit $status
"""


def count_ambertools_calls(monkeypatch, folder):
    """Put a counting ``antechamber`` first on PATH (inherited by worker processes); returns a function
    giving the counts so far, ``Counter({"antechamber": n, "sqm": m})``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "antechamber"
    wrapper.write_text(_COUNTING_ANTECHAMBER)
    wrapper.chmod(0o755)
    counts = folder / "calls.txt"
    counts.write_text("")
    monkeypatch.setenv("OPENMM_HYBRID_TEST_REAL_PATH", os.environ["PATH"])
    monkeypatch.setenv("OPENMM_HYBRID_TEST_COUNT_FILE", str(counts))
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return lambda: Counter(counts.read_text().split())
