"""AmberTools processes die with their caller and leave no folders; sqm has a timeout that says how long
the molecule should take; the ligand parameter cache is checked against the molecule."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import requires_ambertools
from openmm_hybrid.errors import ParameterizationError
from openmm_hybrid.mm.ligand import load_ligand
from openmm_hybrid.mm.parameters import ambertools
from openmm_hybrid.mm.parameters.ambertools import (WORK_PREFIX, expected_sqm_seconds, remove_stale_work_folders,
                                                    run_tool, sqm_timeout, work_folder)
from openmm_hybrid.mm.parameters.cache import cache_path, parameters_checksum
from openmm_hybrid.mm.parameters.gaff2 import parametrize_gaff2

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its new parent) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# a "program" that starts a grandchild (as antechamber starts sqm) and waits for it
GRANDCHILD = "sleep 300 & echo $! > grandchild.pid; wait"


def test_timeout_kills_the_program_and_its_children(tmp_path):
    with pytest.raises(ParameterizationError, match="did not finish within 0.5 s and was stopped; expected"):
        run_tool(["sh", "-c", GRANDCHILD], tmp_path, "sqm", "'test'", timeout=0.5, timeout_advice="expected ...")
    assert _wait_gone(int((tmp_path / "grandchild.pid").read_text()))


@linux_only
def test_children_die_when_the_caller_is_killed(tmp_path):
    """kill -9 of the calling process (no clean-up possible in it): the kernel's parent-death signal
    reaches the wrapper, which kills the program's whole process group."""
    pid = os.fork()
    if pid == 0:  # the "build" process
        try:
            run_tool(["sh", "-c", GRANDCHILD], tmp_path, "sqm", "'test'", timeout=60)
        finally:
            os._exit(1)
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.time() + 20
    while not (pid_file.is_file() and pid_file.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert _wait_gone(grandchild)


def test_interrupt_kills_the_program_and_removes_the_work_folder(tmp_path):
    """SIGINT/SIGTERM in the caller (the command line turns SIGTERM into an interrupt) stops the program
    group and removes its temporary folder."""
    seen = {}

    def interrupt(number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            with work_folder() as work:
                seen["work"] = work
                signal.setitimer(signal.ITIMER_REAL, 1.0)
                run_tool(["sh", "-c", GRANDCHILD], work, "sqm", "'test'", timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not seen["work"].exists()


def test_folders_of_killed_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{WORK_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    (stale / "sqm.out").write_text("x")
    mine = tmp_path / f"{WORK_PREFIX}{os.getpid()}-def"
    mine.mkdir()
    old = time.time() - 3600
    for folder in (stale, mine):
        os.utime(folder, (old, old))
    assert remove_stale_work_folders(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()


def test_sqm_timeout_setting(monkeypatch):
    monkeypatch.delenv(ambertools.SQM_TIMEOUT_VARIABLE, raising=False)
    assert sqm_timeout() == ambertools.DEFAULT_SQM_TIMEOUT_S and sqm_timeout(5) == 5.0
    monkeypatch.setenv(ambertools.SQM_TIMEOUT_VARIABLE, "120")
    assert sqm_timeout() == 120.0
    monkeypatch.setenv(ambertools.SQM_TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ParameterizationError, match="OPENMM_HYBRID_SQM_TIMEOUT='soon' is not a number"):
        sqm_timeout()
    # measured: ibuprofen (33 atoms) 40 s, lidocaine (39 atoms) 80 s on one core of this project's machine
    assert 20 < expected_sqm_seconds(33) < 80 and 40 < expected_sqm_seconds(39) < 160


@requires_ambertools
def test_sqm_timeout_message_says_how_long_the_molecule_should_take(monkeypatch):
    ibuprofen = load_ligand("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(ParameterizationError, match=r"antechamber \(AM1-BCC charges\) for ligand '.*' did not "
                                                    r"finish within 0.5 s and was stopped; a molecule of 33 atoms is "
                                                    r"expected to take about \d+ s.*OPENMM_HYBRID_SQM_TIMEOUT"):
        parametrize_gaff2(ibuprofen, cache=False, timeout=0.5)
    leftovers = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith(WORK_PREFIX)}
    assert not leftovers


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A cache of this test's own, so that damaging entries disturbs no other process."""
    monkeypatch.setenv("OPENMM_HYBRID_CACHE", str(tmp_path / "cache"))


@requires_ambertools
def test_cache_entry_with_wrong_charges_is_recomputed(private_cache, capsys):
    """A cache entry whose charges sum to +1 for neutral ethanol (with a consistent checksum, so only
    the check against the molecule can tell) is rejected with a warning and recomputed."""
    ethanol = load_ligand("CCO")
    good = parametrize_gaff2(ethanol)
    path = cache_path(ethanol, "gaff2", "bcc")
    data = json.loads(path.read_text())
    charges = data["parameters"]["charges"]
    data["parameters"]["charges"] = [q + 1.0 / len(charges) for q in charges]
    data["parameters_sha256"] = parameters_checksum(data["parameters"])
    path.write_text(json.dumps(data))
    capsys.readouterr()
    again = parametrize_gaff2(ethanol)
    err = capsys.readouterr().err
    assert f"warning: cached parameters for ligand {ethanol.name!r}" in err
    assert "the charges sum to +1.0000 e but the molecule's formal charge is +0 e); computing them again" in err
    assert not again.from_cache and abs(sum(again.charges)) < 1e-6
    assert again.charges == pytest.approx(good.charges, abs=1e-6)
    assert parametrize_gaff2(ethanol).from_cache                      # the rewritten entry is used


@requires_ambertools
def test_cache_entry_changed_on_disk_fails_its_checksum(private_cache, capsys):
    ethanol = load_ligand("CCO")
    parametrize_gaff2(ethanol)
    path = cache_path(ethanol, "gaff2", "bcc")
    data = json.loads(path.read_text())
    data["parameters"]["epsilons"][0] *= 2                            # edited without updating the checksum
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert not parametrize_gaff2(ethanol).from_cache
    assert "checksum mismatch: the file was changed or damaged" in capsys.readouterr().err


def _descendants(pid: int) -> set:
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().split(")")[-1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@linux_only
@requires_ambertools
@pytest.mark.slow
def test_sigterm_to_build_leaves_no_processes_or_folders(tmp_path):
    """`kill PID` of `openmm-hybrid build` while sqm runs: antechamber, sqm and their folder go too."""
    env = dict(os.environ, OPENMM_HYBRID_CACHE=str(tmp_path / "cache"))
    build = subprocess.Popen([sys.executable, "-c", "import sys; from openmm_hybrid.cli import main; sys.exit(main())",
                              "build", "--ligand", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "--solvent", "vacuum",
                              "--out", str(tmp_path / "out")], env=env, stderr=subprocess.PIPE, text=True)
    deadline, folders = time.time() + 120, []
    while not folders and time.time() < deadline:
        folders = [f for f in os.listdir(tempfile.gettempdir()) if f.startswith(f"{WORK_PREFIX}{build.pid}-")]
        time.sleep(0.2)
    assert folders, "antechamber did not start"
    time.sleep(1.0)
    children = _descendants(build.pid)
    assert children
    build.send_signal(signal.SIGTERM)
    _, err = build.communicate(timeout=60)
    assert build.returncode == 143 and "stopped by SIGTERM" in err
    assert all(_wait_gone(pid) for pid in children)
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), folders[0]))
    assert not (tmp_path / "out").exists()
