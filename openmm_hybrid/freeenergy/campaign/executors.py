"""Where units run: on a Dask cluster (:class:`DaskExecutor`), or one after the other in this
process (:class:`SerialExecutor`, the serial reference and a debugging aid).

Both hand out futures with ``done()``, ``result()`` and ``exception()``; the driver does not
care which it has.
"""
import concurrent.futures
import uuid
from typing import Iterable, List

import distributed
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker


class SerialExecutor:
    """Runs each submitted call in this process when the driver waits for it, highest priority first."""

    description = "serial, in this process"
    n_workers = 1

    def __init__(self):
        self._queue = []

    def submit(self, function, *args, key: str, priority: int = 0) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        self._queue.append((-priority, len(self._queue), future, function, args))
        return future

    def wait(self, futures: Iterable, timeout: float) -> List:
        """Run the next queued call (one per wait, so that a stop after N units is exact)."""
        pending = [item for item in self._queue if not item[2].done()]
        if not pending:
            return [f for f in futures if f.done()]
        item = min(pending, key=lambda entry: entry[:2])
        self._queue.remove(item)
        _, _, future, function, args = item
        try:
            future.set_result(function(*args))
        except Exception as exc:  # the driver decides what a unit's error means
            future.set_exception(exc)
        return [future]

    def cancel(self, futures: Iterable) -> None:
        cancelled = set(id(f) for f in futures)
        self._queue = [item for item in self._queue if id(item[2]) not in cancelled]

    @staticmethod
    def is_lost(exc: BaseException) -> bool:
        return False


class DaskExecutor:
    """Submits units to a ``distributed.Client``; one Dask task per unit and attempt."""

    def __init__(self, client: distributed.Client, description: str = "Dask"):
        self.client = client
        self.description = description
        self.token = uuid.uuid4().hex[:8]  # task keys of this run never collide with an earlier run's

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def submit(self, function, *args, key: str, priority: int = 0):
        return self.client.submit(function, *args, key=f"campaign-{self.token}:{key}", pure=False, priority=priority)

    def wait(self, futures: Iterable, timeout: float) -> List:
        futures = list(futures)
        try:
            done, _ = distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return list(done)

    def cancel(self, futures: Iterable) -> None:
        futures = list(futures)
        if futures:
            self.client.cancel(futures)

    @staticmethod
    def is_lost(exc: BaseException) -> bool:
        """Whether a unit failed because its worker went away (not because of what it computes)."""
        return isinstance(exc, (KilledWorker, CommClosedError, distributed.client.FutureCancelledError))
