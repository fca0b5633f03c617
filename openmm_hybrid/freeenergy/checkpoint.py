"""Checkpoints: a workflow's progress, saved after every segment so that a run resumes.

A run is a sequence of *stages* (an equilibrium chain at one lambda, the forward switches,
an MBAR window, ...), each made of *segments* whose boundaries are fixed by the settings,
never by when the run was stopped.  After each segment the checkpoint directory receives

- ``<stage>.samples.<segment>.npz``: configurations the segment produced for later stages,
- ``<stage>.state.<segment>.npz``: the chain's full state at the end of the segment,
- ``progress.json``: per stage, the number of finished segments and their records (works,
  reduced potentials), written last and atomically (a rename), so a run killed at any
  moment resumes from the last complete segment.

Every segment's integrator seed derives from the master seed, the stage and the segment
index (:func:`segment_seed`), and each segment starts from a saved state after
``Context.reinitialize`` (see :mod:`.sampler`), so a resumed run repeats the uninterrupted
one exactly on a deterministic platform.
"""
import json
import os
import zlib
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..errors import FreeEnergyError, RunInterrupted
from .sampler import ChainState, load_states, save_states

PROGRESS = "progress.json"


def segment_seed(master_seed: int, stage: str, segment: int) -> int:
    """Integrator seed of one segment: from the master seed, the stage name and the index (1 .. 2^31-1)."""
    sequence = np.random.SeedSequence(entropy=int(master_seed), spawn_key=(zlib.crc32(stage.encode()), int(segment)))
    return int(sequence.generate_state(1, dtype=np.uint32)[0] % (2 ** 31 - 2)) + 1


def derived_seed(master_seed: int, name: str) -> int:
    """Master seed of a sub-run (e.g. one leg of the hydration cycle)."""
    return segment_seed(master_seed, "run:" + name, 0)


class SegmentBudget:
    """Counts segments computed in this process and stops the run after ``limit`` of them
    (all of them saved), raising :class:`RunInterrupted`; ``None``: no limit."""

    def __init__(self, limit: Optional[int] = None):
        self.limit = limit
        self.done = 0

    def spend(self) -> None:
        self.done += 1
        if self.limit is not None and self.done >= self.limit:
            raise RunInterrupted(f"stopped after {self.done} segment(s) as requested; run the same command "
                                 f"again to resume from the checkpoint")


class Checkpoint:
    """Progress of one run in ``directory``.

    Parameters
    ----------
    directory : str or Path
    fingerprint : dict
        What the run computes (resolved settings, input, ...); a directory holding a
        run with another fingerprint is refused, so a resume never mixes two runs.
    budget : SegmentBudget, optional
    """

    def __init__(self, directory, fingerprint: dict, budget: Optional[SegmentBudget] = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.budget = budget or SegmentBudget()
        fingerprint = json.loads(json.dumps(fingerprint))
        path = self.directory / PROGRESS
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("fingerprint") != fingerprint:
                differences = _differences(data.get("fingerprint", {}), fingerprint)
                raise FreeEnergyError(
                    f"'{self.directory}' holds a checkpoint of a different run (differs in: "
                    f"{', '.join(differences[:6]) or 'format'}); resume with the same input and settings, "
                    f"or use a new output folder")
            self.data = data
        else:
            self.data = {"fingerprint": fingerprint, "stages": {}}
            self._write()  # so that a later run with another fingerprint is refused
        self.resumed = any(s["segments"] for s in self.data["stages"].values())

    def segments_done(self, stage: str) -> int:
        return self.data["stages"].get(stage, {}).get("segments", 0)

    def records(self, stage: str) -> list:
        return self.data["stages"].get(stage, {}).get("records", [])

    def is_complete(self, stage: str) -> bool:
        return self.data["stages"].get(stage, {}).get("complete", False)

    def chain_state(self, stage: str) -> ChainState:
        """The chain's state after the stage's last finished segment."""
        n = self.segments_done(stage)
        if n == 0:
            raise FreeEnergyError(f"checkpoint: stage {stage!r} has no finished segment")
        return ChainState.load(self.directory / f"{stage}.state.{n - 1}.npz")

    def samples(self, stage: str) -> List[ChainState]:
        """All configurations saved by the stage's segments, in order."""
        out = []
        for segment in range(self.segments_done(stage)):
            path = self.directory / f"{stage}.samples.{segment}.npz"
            if path.is_file():
                out.extend(load_states(path))
        return out

    def save_segment(self, stage: str, records: list = (), state: Optional[ChainState] = None,
                     samples: Optional[List[ChainState]] = None, complete: bool = False) -> None:
        """Record one finished segment of ``stage`` (then spend one unit of the budget)."""
        entry = self.data["stages"].setdefault(stage, {"segments": 0, "records": [], "complete": False})
        segment = entry["segments"]
        if samples:
            save_states(samples, self.directory / f"{stage}.samples.{segment}.npz")
        if state is not None:
            state.save(self.directory / f"{stage}.state.{segment}.npz")
        entry["segments"] = segment + 1
        entry["records"].extend(_plain(r) for r in records)
        entry["complete"] = bool(complete)
        self._write()
        previous = self.directory / f"{stage}.state.{segment - 1}.npz"
        if state is not None and previous.is_file():
            previous.unlink()  # the chain resumes from the newest state only
        self.budget.spend()

    def _write(self) -> None:
        path = self.directory / PROGRESS
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.data))
        os.replace(temporary, path)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _differences(old, new, prefix="") -> list:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out.extend(_differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [] if old == new else [prefix or "value"]
