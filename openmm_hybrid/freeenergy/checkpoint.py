"""Checkpoints: a workflow's progress, saved after every segment so that a run resumes.

A run is a sequence of *stages* (an equilibrium chain at one lambda, the forward switches,
an MBAR window, ...), each made of *segments* whose boundaries are fixed by the settings,
never by when the run was stopped.  After each segment the checkpoint directory receives

- ``<stage>.samples.<segment>.npz``: configurations the segment produced for later stages,
- ``<stage>.state.<segment>.npz``: the chain's full state at the end of the segment,
- ``progress.json``: per stage, the number of finished segments and their records (works,
  reduced potentials), and the SHA-256 of every file above, written last and atomically (a
  rename), so a run killed at any moment resumes from the last complete segment, and a file
  that is missing or damaged is reported by name instead of being used.

The run's *fingerprint* (what determines its result: the System with every force's parameters
and the ML modules' content, the starting coordinates, the settings with the seed, the
platform) is stored there too; a folder holding another run is refused, naming what differs.
:func:`run_folder` holds an advisory lock on the output folder for the whole run, so a second
process writing the same folder is refused, and prepares the folder (refusing one that holds
something else, or emptying it with ``overwrite``).

Every segment's integrator seed derives from the master seed, the stage and the segment
index (:func:`segment_seed`), and each segment starts from a saved state after
``Context.reinitialize`` (see :mod:`.sampler`), so a resumed run repeats the uninterrupted
one exactly on a deterministic platform.
"""
import contextlib
import json
import shutil
import zlib
from pathlib import Path
from typing import Iterable, Iterator, List, Optional

import numpy as np

from .._files import FolderLock, check_output_folder, file_sha256, write_text_atomic
from ..errors import CheckpointError, FreeEnergyError, RunInterrupted
from ..forces.fingerprint import fingerprint_differences
from .sampler import ChainState, load_states, save_states

PROGRESS = "progress.json"
#: Files that mark a folder as a free-energy run folder (which a rerun resumes).
RUN_FOLDER_MARKERS = ("settings.yaml", "checkpoint", "results.json")
RESTART = "rerun with --overwrite to start afresh (Python: overwrite=True), or use a new output folder"


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


@contextlib.contextmanager
def run_folder(out, overwrite: bool = False, inputs: Iterable = (), what: str = "free-energy") -> Iterator[Path]:
    """Lock ``out`` (:class:`~openmm_hybrid._files.FolderLock`) for a free-energy run and prepare it.

    ``out`` may not be a file, nor one of the ``inputs`` (or contain one).  A non-empty folder
    that is not a free-energy run folder (no ``settings.yaml``, ``checkpoint/`` or
    ``results.json``) is refused unless ``overwrite``; with ``overwrite`` the folder is emptied
    first, so the run starts afresh.  A run folder is kept as it is: the run resumes there (its
    checkpoint refuses another run's).

    Raises
    ------
    OutputFolderError, FolderInUseError
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, what=f"the {what} folder"):
        is_run_folder = out.is_dir() and any((out / marker).exists() for marker in RUN_FOLDER_MARKERS)
        check_output_folder(out, overwrite or is_run_folder, inputs, what)
        if overwrite and out.is_dir():
            for entry in out.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        out.mkdir(parents=True, exist_ok=True)
        yield out


class Checkpoint:
    """Progress of one run in ``directory``.

    Parameters
    ----------
    directory : str or Path
    fingerprint : dict
        What the run computes (resolved settings, input, ...); a directory holding a
        run with another fingerprint is refused, so a resume never mixes two runs.
    budget : SegmentBudget, optional

    Raises
    ------
    CheckpointError
        A checkpoint of another run (naming what differs), or a damaged ``progress.json``.
    """

    def __init__(self, directory, fingerprint: dict, budget: Optional[SegmentBudget] = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.budget = budget or SegmentBudget()
        fingerprint = json.loads(json.dumps(fingerprint))
        path = self.directory / PROGRESS
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
                    raise ValueError("not a checkpoint progress file")
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"checkpoint file '{path}' is damaged ({exc}); the run cannot resume: "
                                      f"{RESTART}") from exc
            if data.get("fingerprint") != fingerprint:
                differences = fingerprint_differences(data.get("fingerprint", {}), fingerprint)
                raise CheckpointError(
                    f"'{self.directory}' holds a checkpoint of a different run (differs in: "
                    f"{', '.join(differences[:6]) or 'format'}); resume with the same input, settings and "
                    f"platform, or {RESTART}")
            self.data = data
        else:
            self.data = {"fingerprint": fingerprint, "stages": {}, "files": {}}
            self._write()  # so that a later run with another fingerprint is refused
        self.data.setdefault("files", {})
        self.resumed = any(s["segments"] for s in self.data["stages"].values())

    def _verified(self, name: str) -> Path:
        """The path of checkpoint file ``name`` after checking it against its recorded checksum."""
        path = self.directory / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint file '{path}' is missing (listed in '{self.directory / PROGRESS}'); "
                                  f"the run cannot resume: {RESTART}")
        expected = self.data["files"].get(name)
        if expected is not None and file_sha256(path) != expected:
            raise CheckpointError(f"checkpoint file '{path}' is damaged (checksum mismatch); the run cannot resume: "
                                  f"{RESTART}")
        return path

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
        return ChainState.load(self._verified(f"{stage}.state.{n - 1}.npz"))

    def samples(self, stage: str) -> List[ChainState]:
        """All configurations saved by the stage's segments, in order."""
        out = []
        for name in self.data["stages"].get(stage, {}).get("sample_files", []):
            out.extend(load_states(self._verified(name)))
        return out

    def save_segment(self, stage: str, records: list = (), state: Optional[ChainState] = None,
                     samples: Optional[List[ChainState]] = None, complete: bool = False) -> None:
        """Record one finished segment of ``stage`` (then spend one unit of the budget)."""
        entry = self.data["stages"].setdefault(stage, {"segments": 0, "records": [], "complete": False})
        segment = entry["segments"]
        if samples:
            name = f"{stage}.samples.{segment}.npz"
            save_states(samples, self.directory / name)
            self.data["files"][name] = file_sha256(self.directory / name)
            entry.setdefault("sample_files", []).append(name)
        if state is not None:
            name = f"{stage}.state.{segment}.npz"
            state.save(self.directory / name)
            self.data["files"][name] = file_sha256(self.directory / name)
        entry["segments"] = segment + 1
        entry["records"].extend(_plain(r) for r in records)
        entry["complete"] = bool(complete)
        previous = f"{stage}.state.{segment - 1}.npz"
        if state is not None:
            self.data["files"].pop(previous, None)
        self._write()
        if state is not None:
            (self.directory / previous).unlink(missing_ok=True)  # the chain resumes from the newest state only
        self.budget.spend()

    def _write(self) -> None:
        write_text_atomic(self.directory / PROGRESS, json.dumps(self.data))


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
