"""The driver: submits what is ready, skips what is done, resubmits what a dead worker lost.

One loop in the process that started the campaign (it holds the folder lock):

1. a unit whose result exists is done (from this or an earlier run) and never submitted again;
2. every unit whose dependencies are done is submitted (highest priority first: builds,
   embeddings and equilibrium chains before switch batches, so chains finish early);
3. a finished unit is logged (``execution.jsonl``) and may make others ready;
4. a unit whose worker died (``KilledWorker``: Dask already retried it on other workers
   ``allowed-failures`` times, or the connection to it broke) is submitted again, up to
   ``max_attempts`` times; its result file is written whole or not at all, so nothing is lost
   or counted twice;
5. a unit that raised (a blow-up, an element the model lacks) fails its ligand: the reason is
   recorded in ``failures.json``, the ligand's other units are dropped, the others go on.

``stop_after_units`` (and Ctrl-C / SIGTERM) stop the loop: running units are cancelled, and
:class:`~openmm_hybrid.errors.RunInterrupted` says how to resume.
"""
from typing import Callable, Dict, Optional, Tuple

from ..._util import progress
from ...errors import RunInterrupted
from .graph import CampaignGraph, Unit
from .progress import CampaignProgress
from .store import CampaignStore
from .units import failure_reason, run_unit


def execute(graph: CampaignGraph, store: CampaignStore, executor, arguments: Callable[[Unit], Tuple],
            meter: CampaignProgress, max_attempts: int = 3, stop_after_units: Optional[int] = None) -> Dict:
    """Run every unit of ``graph`` not done yet (see the module docstring).

    Parameters
    ----------
    graph : CampaignGraph
    store : CampaignStore
    executor : SerialExecutor or DaskExecutor
    arguments : callable
        ``arguments(unit)`` -> the extra arguments of :func:`run_unit` (calculation, build).
    meter : CampaignProgress
        Holds the done units and failed ligands (updated here).
    max_attempts : int
    stop_after_units : int, optional
        Stop (resumably) after this many units computed in this run.

    Returns
    -------
    dict
        ``computed`` (units run in this run), ``resubmitted`` (units submitted again after a
        worker died), ``failed`` (ligand -> reason, this run).
    """
    attempts: Dict[str, int] = {}
    running: Dict[object, Unit] = {}
    resubmitted, failed = 0, {}

    def submit(unit: Unit) -> None:
        attempts[unit.id] = attempts.get(unit.id, 0) + 1
        future = executor.submit(run_unit, str(store.root), unit, *arguments(unit),
                                 key=f"{unit.id}#{attempts[unit.id]}", priority=graph.priority(unit))
        running[future] = unit

    try:
        while True:
            busy = {u.id for u in running.values()}
            excluded = busy | {u.id for u in graph if u.ligand in meter.failed}
            for unit in graph.ready(meter.done, excluded):
                submit(unit)
            if not running:
                break
            for future in executor.wait(list(running), timeout=min(meter.interval, 5.0)):
                unit = running.pop(future, None)
                if unit is None:  # dropped with its failed ligand while this loop ran
                    continue
                exc = future.exception()
                record = future.result() if exc is None else {}
                if exc is None and "failed" not in record:
                    record["attempt"] = attempts[unit.id]
                    store.log_execution(record)
                    meter.unit_done(unit, record)
                    if stop_after_units is not None and meter.computed >= stop_after_units:
                        raise RunInterrupted(f"stopped after {meter.computed} unit(s) as requested")
                elif exc is not None and executor.is_lost(exc) and attempts[unit.id] < max_attempts \
                        and unit.ligand not in meter.failed:
                    progress(f"campaign: {unit.id} was lost with its worker ({type(exc).__name__}); submitting it "
                             f"again (attempt {attempts[unit.id] + 1} of {max_attempts})")
                    resubmitted += 1
                    submit(unit)
                elif unit.ligand not in meter.failed:
                    reason = record.get("failed") or failure_reason(unit, exc)
                    failed[unit.ligand] = reason
                    meter.ligand_failed(unit.ligand, reason)
                    store.record_failure(unit.ligand, unit.id, reason)
                    progress(f"campaign: ligand {unit.ligand} failed: {reason}")
                    same = [f for f, u in running.items() if u.ligand == unit.ligand]
                    executor.cancel(same)
                    for f in same:
                        running.pop(f)
            meter.report()
    except KeyboardInterrupt:
        raise RunInterrupted("stopped by a signal") from None
    finally:
        executor.cancel(list(running))
        meter.report(force=True)
    return {"computed": meter.computed, "resubmitted": resubmitted, "failed": failed}
