"""Checkpoints of an MD run (``run_simulation``): saved every N steps and on a stop request, read
back by ``resume``.

A checkpoint in the run folder is

- ``checkpoint.<step>.chk``: OpenMM's binary checkpoint (positions, velocities, box, parameters,
  step count and the integrator's random-number state; exact continuation on the same platform
  and machine);
- ``checkpoint.<step>.xml``: the same State as portable XML (used when the binary checkpoint
  cannot be loaded, e.g. on another platform: the run then continues with a fresh random stream);
- ``checkpoint.json``: the step, the run's fingerprint (System, settings, platform), the SHA-256
  of both files, and the run's record so far; written last and atomically, so it always
  describes a complete pair of files, whose older predecessors are removed afterwards.

:func:`truncate_log` and :func:`truncate_dcd` cut the CSV log and the trajectory back to the
checkpoint's step, so a run killed between checkpoints resumes without repeated rows or frames.
"""
import json
import os
import struct
from pathlib import Path
import openmm

from .._files import file_sha256, write_bytes_atomic, write_text_atomic
from ..errors import CheckpointError
from ..forces.fingerprint import fingerprint_differences

INDEX = "checkpoint.json"
RESTART = "start afresh with --overwrite (Python: resume=False in a new folder)"


def save_checkpoint(folder, context: openmm.Context, fingerprint: dict, record: dict) -> int:
    """Save the Context's state in ``folder``; returns the step saved."""
    folder = Path(folder)
    state = context.getState(getPositions=True, getVelocities=True, getParameters=True, getEnergy=True,
                             enforcePeriodicBox=False)
    step = int(context.getStepCount())
    binary, portable = f"checkpoint.{step}.chk", f"checkpoint.{step}.xml"
    write_bytes_atomic(folder / binary, context.createCheckpoint())
    write_text_atomic(folder / portable, openmm.XmlSerializer.serialize(state))
    previous = _read_index(folder) if (folder / INDEX).is_file() else None
    index = {"step": step, "fingerprint": fingerprint, "record": record,
             "files": {binary: file_sha256(folder / binary), portable: file_sha256(folder / portable)}}
    write_text_atomic(folder / INDEX, json.dumps(index, indent=1))
    for name in (previous or {}).get("files", {}):
        if name not in index["files"]:
            (folder / name).unlink(missing_ok=True)
    return step


def _read_index(folder: Path) -> dict:
    path = folder / INDEX
    try:
        index = json.loads(path.read_text())
        if not isinstance(index, dict) or "step" not in index or "files" not in index:
            raise ValueError("not a run checkpoint index")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint index '{path}' is damaged ({exc}); the run cannot resume: "
                              f"{RESTART}") from exc
    return index


def read_checkpoint(folder, fingerprint: dict) -> dict:
    """The checkpoint in ``folder`` after checking that it belongs to this run and is intact.

    Returns
    -------
    dict
        ``step``, ``record``, ``binary`` and ``portable`` (the two state files' paths).

    Raises
    ------
    CheckpointError
        No checkpoint, one of another run (naming what differs), or a missing or damaged file.
    """
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        raise CheckpointError(f"no checkpoint to resume from in '{folder}' (no {INDEX}): the run stopped before its "
                              f"first checkpoint; {RESTART}")
    index = _read_index(folder)
    stored = index.get("fingerprint", {})
    if stored != json.loads(json.dumps(fingerprint)):
        differences = fingerprint_differences(stored, json.loads(json.dumps(fingerprint)))
        raise CheckpointError(f"the checkpoint in '{folder}' belongs to a different run (differs in: "
                              f"{', '.join(differences[:6])}); resume with the same input, settings and platform, "
                              f"or {RESTART}")
    paths = {}
    for name, checksum in index["files"].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint file '{path}' is missing; the run cannot resume: {RESTART}")
        if file_sha256(path) != checksum:
            raise CheckpointError(f"checkpoint file '{path}' is damaged (checksum mismatch); the run cannot resume: "
                                  f"{RESTART}")
        paths["binary" if name.endswith(".chk") else "portable"] = path
    return {"step": int(index["step"]), "record": index.get("record", {}), **paths}


def restore(context: openmm.Context, checkpoint: dict) -> bool:
    """Load a checkpoint read by :func:`read_checkpoint` into ``context``.

    Returns True for an exact continuation (binary checkpoint), False when only the portable
    State could be loaded (other platform or machine: a fresh random stream).
    """
    try:
        context.loadCheckpoint(checkpoint["binary"].read_bytes())
        return True
    except openmm.OpenMMException:
        state = openmm.XmlSerializer.deserialize(checkpoint["portable"].read_text())
        context.setState(state)
        context.setStepCount(int(checkpoint["step"]))
        return False


def remove_checkpoint(folder) -> None:
    """Remove the checkpoint files of a finished run."""
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        return
    try:
        names = list(json.loads((folder / INDEX).read_text()).get("files", {}))
    except (OSError, ValueError):
        names = []
    for name in names + [INDEX]:
        (folder / name).unlink(missing_ok=True)


def truncate_log(path, last_step: int) -> None:
    """Drop the rows of a CSV log (first column: step) after ``last_step``."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and _first_int(line) <= last_step]
    write_text_atomic(path, "".join(kept))


def _first_int(line: str) -> int:
    try:
        return int(line.split(",", 1)[0])
    except ValueError:
        return 1 << 62


def truncate_dcd(path, n_frames: int, n_atoms: int, periodic: bool) -> None:
    """Cut a DCD file written by OpenMM's ``DCDFile`` back to its first ``n_frames`` frames
    (the header's frame count and last-step fields updated)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size < 104:
        return
    with open(path, "r+b") as stream:
        stream.seek(12)
        first_step, interval = struct.unpack("<2i", stream.read(8))
        stream.seek(92)
        comments = struct.unpack("<i", stream.read(4))[0]
        header = 104 + comments + 8
        frame = (56 if periodic else 0) + 3 * (8 + 4 * n_atoms)
        stored = max(0, (os.path.getsize(path) - header) // frame)
        n_frames = min(n_frames, stored)
        stream.truncate(header + n_frames * frame)
        stream.seek(8)
        stream.write(struct.pack("<i", n_frames))
        stream.seek(20)
        stream.write(struct.pack("<i", first_step + max(0, n_frames - 1) * interval))
