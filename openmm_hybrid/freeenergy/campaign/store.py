"""The campaign folder: where every unit's result lives, written atomically.

::

    DIR/settings.yaml                resolved settings (the seed included)
    DIR/checkpoint/                  fingerprint of the campaign (settings, protein, model)
    DIR/build/PHASE/LIGAND/          MM Systems (build.json, system.xml, ...); series.json per phase
    DIR/ligands/LIGAND/checkpoint/   fingerprint of the ligand (molecule, coordinates)
    DIR/ligands/LIGAND/CALC/embed/   ML/MM System of an end-state correction (embed.json, ...)
    DIR/ligands/LIGAND/CALC/units/STAGE.SEGMENT.npz    one file per unit (states, works, potentials)
    DIR/ligands/LIGAND/CALC/results.json (+ plots)     the calculation's estimate
    DIR/failures.json  DIR/execution.jsonl  DIR/progress.json  DIR/campaign.json  DIR/campaign.csv  DIR/plots/

A unit is done when its result exists: every result is written to a temporary file in its final
folder and renamed into place, so a unit killed at any moment leaves nothing that looks finished
(the temporary file is removed at the next start), and a unit run twice (a worker presumed dead
that was not) writes the same bytes twice.  Only the driver writes the JSON files at the top.
"""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np

from ..._files import write_text_atomic
from ..sampler import ChainState, load_states, save_states
from .graph import Unit

UNIT_SUFFIX = ".npz"


@contextlib.contextmanager
def first_folder(out) -> Iterator[Path]:
    """A temporary sibling of ``out`` to fill; renamed to ``out`` if the block succeeds and no
    other process put a folder there first (then this one is discarded: the same unit run twice
    computes the same folder, and a folder that units may be reading is never swapped)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield work
        try:
            os.rename(work, out)
        except OSError:
            if not out.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


class CampaignStore:
    """Paths and atomic reads/writes in one campaign folder."""

    def __init__(self, root):
        self.root = Path(root)

    # ---- paths ----------------------------------------------------------------------------

    def build_dir(self, phase: str, ligand: str) -> Path:
        return self.root / "build" / phase / ligand

    def ligand_dir(self, ligand: str) -> Path:
        return self.root / "ligands" / ligand

    def calculation_dir(self, ligand: str, calculation: str) -> Path:
        return self.ligand_dir(ligand) / calculation

    def embed_dir(self, ligand: str, calculation: str) -> Path:
        return self.calculation_dir(ligand, calculation) / "embed"

    def unit_path(self, unit: Unit) -> Path:
        name = f"{unit.stage}.{unit.segment}{UNIT_SUFFIX}"
        return self.calculation_dir(unit.ligand, unit.calculation) / "units" / name

    def results_path(self, ligand: str, calculation: str) -> Path:
        return self.calculation_dir(ligand, calculation) / "results.json"

    def output_of(self, unit: Unit) -> Path:
        """The file whose existence means ``unit`` is done."""
        if unit.kind == "build":
            return self.root / "build" / ".done" / f"{unit.ligand}.json"
        if unit.kind == "embed":
            return self.embed_dir(unit.ligand, unit.calculation) / "embed.json"
        if unit.kind == "analysis":
            return self.results_path(unit.ligand, unit.calculation)
        return self.unit_path(unit)

    def is_done(self, unit: Unit) -> bool:
        return self.output_of(unit).is_file()

    # ---- unit results -----------------------------------------------------------------------

    @contextlib.contextmanager
    def atomic_path(self, path: Path, suffix: str = UNIT_SUFFIX) -> Iterator[Path]:
        """A temporary path beside ``path`` to write into; renamed to ``path`` if the block succeeds."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(handle)
        temporary = Path(temporary)
        try:
            yield temporary
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def save_states(self, unit: Unit, states: List[ChainState]) -> Path:
        path = self.unit_path(unit)
        with self.atomic_path(path) as temporary:
            save_states(states, temporary)
        return path

    def load_states(self, unit: Unit) -> List[ChainState]:
        return load_states(self.unit_path(unit))

    def save_arrays(self, unit: Unit, **arrays) -> Path:
        path = self.unit_path(unit)
        with self.atomic_path(path) as temporary:
            np.savez(temporary, **arrays)
        return path

    def load_arrays(self, unit: Unit) -> Dict[str, np.ndarray]:
        with np.load(self.unit_path(unit)) as data:
            return {key: data[key].copy() for key in data.files}

    def remove_temporary_files(self) -> int:
        """Delete what units killed mid-write left behind; returns how many."""
        found = [path for folder in (self.root / "ligands", self.root / "build") if folder.is_dir()
                 for path in folder.rglob(".*.tmp*")]
        for path in sorted(found, key=lambda p: len(p.parts)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink(missing_ok=True)
        return len(found)

    # ---- driver files -------------------------------------------------------------------------

    def write_json(self, name: str, data) -> Path:
        return write_text_atomic(self.root / name, json.dumps(data, indent=2, allow_nan=True) + "\n")

    def read_json(self, name: str, default=None):
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else default

    def failures(self) -> Dict[str, dict]:
        """Ligands that failed in earlier runs: ``{ligand: {"unit", "reason"}}``."""
        return self.read_json("failures.json", {})

    def record_failure(self, ligand: str, unit_id: str, reason: str) -> None:
        failures = self.failures()
        failures[ligand] = {"unit": unit_id, "reason": reason}
        self.write_json("failures.json", failures)

    def forget_failures(self, ligands: Optional[List[str]] = None) -> None:
        failures = self.failures()
        for ligand in list(failures) if ligands is None else ligands:
            failures.pop(ligand, None)
        self.write_json("failures.json", failures)

    def log_execution(self, record: dict) -> None:
        """Append one finished unit to ``execution.jsonl`` (unit, worker, process, seconds)."""
        with open(self.root / "execution.jsonl", "a") as stream:
            stream.write(json.dumps(record) + "\n")

    def executions(self) -> List[dict]:
        path = self.root / "execution.jsonl"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line cut by a crash of the driver
                continue
        return records
