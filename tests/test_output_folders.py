"""Output folders are complete or absent and written by one process at a time: refusals of non-empty,
input and file --out folders, --overwrite, a write that fails part-way, folder locks."""
import errno
import subprocess
import sys

import pytest

from helpers import requires_ambertools
from openmm_hybrid import _files
from openmm_hybrid._files import FolderLock, output_folder, partial_folder, write_files_atomic
from openmm_hybrid.cli import main
from openmm_hybrid.errors import FolderInUseError, OutputFolderError


@pytest.fixture(scope="module")
def ethanol_build(tmp_path_factory):
    """Ethanol in vacuum (GAFF2/AM1-BCC, 9 atoms), built by the command line."""
    folder = tmp_path_factory.mktemp("ethanol") / "build"
    assert main(["--quiet", "build", "--ligand", "CCO", "--solvent", "vacuum", "--out", str(folder)]) == 0
    return folder


def test_output_folder_is_complete_or_absent(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with output_folder(out) as work:
            (work / "half.txt").write_text("x")
            raise RuntimeError("fails half-way")
    assert not out.exists() and not partial_folder(out).exists()
    with output_folder(out) as work:
        (work / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new" and not partial_folder(out).exists()
    with pytest.raises(OutputFolderError, match="is not empty.*--overwrite"):
        with output_folder(out):
            pass
    with pytest.raises(RuntimeError):
        with output_folder(out, overwrite=True) as work:
            (work / "b.txt").write_text("replacement")
            raise RuntimeError
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]          # the old folder, untouched
    with output_folder(out, overwrite=True) as work:
        (work / "b.txt").write_text("replacement")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]          # the new one, nothing of the old
    assert not list(tmp_path.glob(".*"))                                # no partial folders or lock files left


def test_output_folder_refusals(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="exists and is a file"):
        with output_folder(tmp_path / "file"):
            pass
    source = tmp_path / "input"
    source.mkdir()
    (source / "system.xml").write_text("x")
    with pytest.raises(OutputFolderError, match="is the input"):
        with output_folder(source, overwrite=True, inputs=[source]):
            pass
    with pytest.raises(OutputFolderError, match="contains the input"):
        with output_folder(tmp_path, overwrite=True, inputs=[source / "system.xml"]):
            pass
    assert (source / "system.xml").read_text() == "x"


def test_kept_partial_folder_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyError):
        with output_folder(out, keep_on=(KeyError,)) as work:
            (work / "checkpoint.json").write_text("{}")
            raise KeyError("stopped")
    assert (partial_folder(out) / "checkpoint.json").is_file()         # kept for a resume
    with pytest.raises(OutputFolderError, match="interrupted run.*--resume.*--overwrite"):
        with output_folder(out, what="run", keep_on=(KeyError,)):
            pass
    with output_folder(out, keep_on=(KeyError,), resume=True) as work:
        assert (work / "checkpoint.json").is_file()
    assert (out / "checkpoint.json").is_file()
    with pytest.raises(OutputFolderError, match="nothing to resume"):
        with output_folder(tmp_path / "other", keep_on=(KeyError,), resume=True):
            pass


def test_failed_write_keeps_the_previous_files(tmp_path, monkeypatch):
    """A write that fails part-way (here: the third file hits a file-size limit) changes nothing."""
    write_files_atomic(tmp_path, {"a": "old a", "b": "old b", "c": "old c"})
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(_files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="File too large"):
        write_files_atomic(tmp_path, {"a": "new a", "b": "new b", "c": "new c"})
    assert [(tmp_path / n).read_text() for n in "abc"] == ["old a", "old b", "old c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_folder_lock_refuses_a_second_holder(tmp_path):
    folder = tmp_path / "fe"
    with FolderLock(folder, what="the run folder"):
        with pytest.raises(FolderInUseError, match=r"the run folder '.*fe' is in use by another openmm-hybrid "
                                                   r"process \(process \d+ on "):
            FolderLock(folder, what="the run folder").acquire()
    with FolderLock(folder) as lock:                                    # released: free again
        assert lock.held
    assert not (tmp_path / ".fe.lock").exists()


def test_folder_lock_held_by_another_process(tmp_path):
    """A lock taken by another process (flock on the same file) is seen, and released when it exits."""
    folder = tmp_path / "shared"
    script = ("import fcntl, sys, time\n"
              f"f = open({str(tmp_path / '.shared.lock')!r}, 'a+')\n"
              "fcntl.flock(f, fcntl.LOCK_EX)\n"
              "f.write('{\"pid\": 1, \"host\": \"elsewhere\", \"command\": \"fe endstate\"}'); f.flush()\n"
              "print('locked', flush=True)\n"
              "sys.stdin.readline()\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUseError, match="on elsewhere: fe endstate"):
            FolderLock(folder).acquire()
    finally:
        holder.communicate("go\n", timeout=30)
    with FolderLock(folder):
        pass


@requires_ambertools
def test_build_refuses_a_non_empty_out_and_overwrite_replaces_it(ethanol_build, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "embed.json").write_text("{}")                               # e.g. an old embed folder
    args = ["build", "--ligand", "CCO", "--solvent", "vacuum", "--out", str(out)]
    assert main(args) == 2
    assert "is not empty: choose a new folder, or pass --overwrite" in capsys.readouterr().err
    assert main(["--quiet"] + args + ["--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "state.xml", "system.xml", "topology.pdb"]
    (tmp_path / "afile").write_text("x")
    assert main(["build", "--ligand", "CCO", "--out", str(tmp_path / "afile")]) == 2
    assert "exists and is a file" in capsys.readouterr().err


@requires_ambertools
def test_build_write_failure_keeps_the_previous_build(ethanol_build, tmp_path, monkeypatch):
    out = tmp_path / "build"
    assert main(["--quiet", "build", "--ligand", "CCO", "--solvent", "vacuum", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", full_disk)
    code = main(["--quiet", "build", "--ligand", "CCO", "--solvent", "vacuum", "--hmr", "2", "--out", str(out),
                 "--overwrite"])
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not partial_folder(out).exists()


def test_embed_into_its_input_folder_is_refused(ethanol_build, capsys):
    before = sorted(p.name for p in ethanol_build.iterdir())
    assert main(["embed", "--input", str(ethanol_build), "--out", str(ethanol_build), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert sorted(p.name for p in ethanol_build.iterdir()) == before


def test_build_into_a_locked_folder_is_refused(tmp_path, capsys):
    with FolderLock(tmp_path / "busy"):
        assert main(["build", "--ligand", "CCO", "--solvent", "vacuum", "--out", str(tmp_path / "busy")]) == 2
    assert "is in use by another openmm-hybrid process" in capsys.readouterr().err


def test_damaged_system_file_is_named(ethanol_build, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for p in ethanol_build.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    text = (damaged / "system.xml").read_text()
    (damaged / "system.xml").write_text(text[:len(text) // 2])         # truncated, as by a full disk
    assert main(["energy", "--input", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert "system.xml" in err and "damaged or truncated" in err


def test_stale_partial_folder_of_a_crashed_build_is_replaced(tmp_path):
    out = tmp_path / "b"
    partial_folder(out).mkdir()
    (partial_folder(out) / "system.xml").write_text("half")           # left by kill -9
    with output_folder(out) as work:
        assert not (work / "system.xml").exists()
        (work / "system.xml").write_text("whole")
    assert (out / "system.xml").read_text() == "whole"
    assert not partial_folder(out).exists()
