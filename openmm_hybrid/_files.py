"""Output files and folders that are complete or absent, never half-written, and one writer at a time.

- :func:`write_text_atomic`, :func:`write_bytes_atomic`, :func:`write_files_atomic`: a file (or a
  set of files) is written beside its final name and renamed into place, so a reader (or a crash)
  sees the old file or the new one;
- :func:`output_folder`: a command's ``--out`` folder is assembled in a partial sibling
  (``.NAME.partial``) and renamed into place when the command succeeds; a failure leaves the
  previous folder (or none);
- :class:`FolderLock`: an advisory lock on a folder, so that a second process writing the same
  folder is refused instead of mixing its files with the first one's;
- :func:`file_sha256`: checksums of checkpoint files.
"""
import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, Tuple, Type

from .errors import FolderInUseError, OutputFolderError

try:  # POSIX; elsewhere the lock is a no-op (documented in FolderLock)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

PARTIAL_SUFFIX = ".partial"


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The data is flushed to disk before the rename, so after a crash or a failed write (full
    disk, file-size limit) ``path`` holds either its previous content or ``data``.
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_files_atomic(folder, contents: dict) -> Path:
    """Write several files into ``folder`` so that a failure leaves all of the old ones.

    Every file (``{name: bytes or str}``) is first written in full to a temporary file beside
    its final name; only when all of them are written are they renamed into place, so a
    failing write (full disk, file-size limit, an exception while serialising) changes nothing.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, data in contents.items():
            handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            written.append((tmp, folder / name))
            with os.fdopen(handle, "wb") as stream:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
                stream.flush()
                os.fsync(stream.fileno())
    except BaseException:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, final in written:
        os.replace(tmp, final)
    return folder


def write_text_atomic(path, text: str) -> Path:
    """:func:`write_bytes_atomic` for text (UTF-8)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_folder(out) -> Path:
    """Where :func:`output_folder` assembles ``out``: the hidden sibling ``.NAME.partial``."""
    out = Path(out)
    return out.parent / f".{out.name}{PARTIAL_SUFFIX}"


def _same_or_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_output_folder(out, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Path:
    """Refuse an ``--out`` that is a file, an input (or holds one), or a non-empty folder without ``overwrite``.

    Parameters
    ----------
    out : str or Path
    overwrite : bool
        Allow replacing a non-empty folder.
    inputs : iterable of paths
        Folders or files the command reads; ``out`` may be neither one of them nor a folder that
        contains one (replacing it would delete the input).  ``None`` entries are skipped.
    what : str
        How messages name the folder ("build", "embed", "run", ...).

    Raises
    ------
    OutputFolderError
    """
    out = Path(out)
    for source in inputs:
        if source is None:
            continue
        source = Path(source)
        if _same_or_inside(source, out):
            where = "is" if source.resolve() == out.resolve() else "contains"
            raise OutputFolderError(f"the {what} folder '{out}' {where} the input '{source}': write to another "
                                    f"folder (--out) so that the input stays as it is")
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"the {what} folder '{out}' exists and is a file: give a folder path (--out)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputFolderError(f"the {what} folder '{out}' is not empty: choose a new folder, or pass "
                                f"--overwrite to replace it")
    return out


@contextlib.contextmanager
def output_folder(out, overwrite: bool = False, inputs: Iterable = (), what: str = "output",
                  keep_on: Tuple[Type[BaseException], ...] = (), resume: bool = False) -> Iterator[Path]:
    """Assemble a folder in its partial sibling and move it to ``out`` only if the block succeeds.

    Holds :class:`FolderLock` on ``out`` throughout, and yields the partial folder
    (:func:`partial_folder`) to write into.  On success an existing ``out`` (allowed only with
    ``overwrite``) is replaced by it; on an exception ``out`` is left as it was.

    Parameters
    ----------
    out, overwrite, inputs, what
        See :func:`check_output_folder`, which runs first.
    keep_on : tuple of exception types
        For a resumable command (``run``): on these exceptions the partial folder is kept (its
        files can be looked at, and ``resume`` continues from them); on any other it is removed.
        A kept partial folder then blocks a fresh run into ``out`` unless ``overwrite`` (which
        discards it) or ``resume``.
    resume : bool
        Continue in the kept partial folder, which must exist (and is kept on any exception).

    Raises
    ------
    OutputFolderError
        See :func:`check_output_folder`; also a kept partial folder without ``resume`` or
        ``overwrite``, or ``resume`` without one.
    FolderInUseError
        Another process holds the folder's lock.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = partial_folder(out)
    with FolderLock(out, what=f"the {what} folder"):
        check_output_folder(out, overwrite, inputs, what)
        if resume:
            if not work.is_dir():
                raise OutputFolderError(f"nothing to resume: there is no interrupted {what} for '{out}' (no "
                                        f"'{work}'); run without --resume")
        elif work.exists():
            if keep_on and not overwrite:
                raise OutputFolderError(f"'{work}' holds an interrupted {what} for '{out}': continue it with "
                                        f"--resume, or pass --overwrite to discard it")
            # a stale partial folder of a crashed, non-resumable command (we hold the lock)
            shutil.rmtree(work)
        work.mkdir(exist_ok=True)
        try:
            yield work
        except keep_on or ():
            raise
        except BaseException:
            if not resume:  # a resumed partial folder holds earlier work: a refused resume keeps it
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


class FolderLock:
    """An advisory, exclusive lock on a folder, for one writing process at a time.

    The lock is ``flock`` on the hidden sibling file ``.NAME.lock`` (beside the folder, so that
    the folder itself may be replaced while the lock is held); the file records the holder's
    process id, host and command line for the refusal message, and is removed on release.
    Advisory: only code that takes the lock is kept out.  Works on local file systems and on
    NFS where ``flock`` is supported (Linux NFS clients emulate it with byte-range locks); a
    no-op where ``fcntl`` does not exist.  Not re-entrant: a second lock on the same folder in
    the same process is refused like one from another process.

    Use as a context manager (``with FolderLock(path): ...``) or with :meth:`acquire` /
    :meth:`release`, e.g. around each task of a Dask campaign that writes into a shared folder.

    Parameters
    ----------
    folder : str or Path
        The folder to protect (need not exist yet; its parent is created).
    what : str
        How messages name it, e.g. ``"the run folder"``.

    Raises
    ------
    FolderInUseError
        From :meth:`acquire` when another holder has the lock.
    """

    def __init__(self, folder, what: str = "the folder"):
        self.folder = Path(folder)
        self.path = self.folder.parent / f".{self.folder.name}.lock"
        self.what = what
        self._stream = None

    def acquire(self) -> "FolderLock":
        if fcntl is None or self._stream is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            stream = open(self.path, "a+")
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(self.path)
                stream.close()
                raise FolderInUseError(f"{self.what} '{self.folder}' is in use by another openmm-hybrid process "
                                       f"({holder}); wait for it to finish or stop it, or use another folder "
                                       f"(lock file: '{self.path}')") from None
            # the previous holder may have removed the file between our open and flock: retry on the new one
            try:
                same = os.stat(self.path).st_ino == os.fstat(stream.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            stream.close()
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}))
        stream.flush()
        self._stream = stream
        return self

    def release(self) -> None:
        if self._stream is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiting process then retries on a new file
        finally:
            self._stream.close()
            self._stream = None

    @property
    def held(self) -> bool:
        return self._stream is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(path: Path) -> str:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    if not data:
        return "holder unknown"
    return f"process {data.get('pid')} on {data.get('host')}: {data.get('command', '')[:200]}"
