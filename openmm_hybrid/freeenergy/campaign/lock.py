"""An advisory lock on a campaign folder: a second run on the same folder is refused.

``fcntl.flock`` on ``campaign.lock`` in the folder, held for the whole run.  The kernel drops it
when the holding process ends, however it ends (a crash or ``kill -9`` leaves no stale lock).
The holder writes its host, process id and start time into the file so that the refusal can say
who holds it.  flock works between processes of one machine and on most local and cluster file
systems; on NFS without lock support it may not exclude a run on another host.
"""
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ...errors import CampaignError

LOCK_FILE = "campaign.lock"


class FolderLock:
    """Exclusive advisory lock on ``directory`` (a context manager).

    Raises
    ------
    CampaignError
        When another process (or another lock object of this process) holds it.
    """

    def __init__(self, directory):
        self.path = Path(directory) / LOCK_FILE
        self._fd = None

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise CampaignError(
                f"the campaign folder '{self.path.parent}' is in use by another run ({holder}); two runs on one "
                f"folder would compute the same units twice: wait for that run to finish or stop it (its lock "
                f"goes when it exits), or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        info = {}
    if not info:
        return "holder unknown"
    return f"process {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
