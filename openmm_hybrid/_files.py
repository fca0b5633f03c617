"""Output files and folders that are complete or absent, never half-written.

- :func:`write_text_atomic`: a file is written beside its final name and renamed into place, so
  a reader (or a crash) sees the old file or the new one;
- :func:`output_folder`: a command's ``--out`` folder is assembled in a temporary sibling and
  renamed into place when the command succeeds; a failure leaves the previous folder (or none).
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .errors import HybridError


class OutputFolderError(HybridError):
    """An output folder cannot be used as asked (not empty, a file, the input folder)."""


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_folder(out, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Path:
    """Refuse an ``--out`` that is a file, one of the ``inputs``, or a non-empty folder without ``overwrite``."""
    out = Path(out)
    for source in inputs:
        if source is not None and Path(source).exists() and out.exists() and \
                os.path.samefile(out, source):
            raise OutputFolderError(f"the {what} folder '{out}' is the input folder: write to another folder "
                                    f"(--out) so the input stays as it is")
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"the {what} folder '{out}' exists and is a file: give a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputFolderError(f"the {what} folder '{out}' is not empty: choose a new folder or pass "
                                f"--overwrite to replace it")
    return out


@contextlib.contextmanager
def output_folder(out, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Iterator[Path]:
    """Assemble a folder in a temporary sibling and move it to ``out`` only if the block succeeds.

    Yields the temporary folder to write into.  On success an existing ``out`` (allowed only with
    ``overwrite``) is replaced; on an exception the temporary folder is removed and ``out`` is
    left as it was.  See :func:`check_output_folder` for what is refused.
    """
    out = check_output_folder(out, overwrite, inputs, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    replace_folder(work, out)


def replace_folder(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``, replacing what is there (an old folder is removed after the swap)."""
    old: Optional[Path] = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rmdir(old)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
