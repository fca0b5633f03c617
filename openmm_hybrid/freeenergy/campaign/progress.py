"""Progress of a campaign: units done / total for the whole campaign and per ligand, and the time left.

The time left is estimated per unit still to run: the mean wall time of finished units of the
same kind and calculation (``complex`` switch batches cost more than ``solvent`` ones), else the
mean seconds per MD step of that calculation times the unit's steps, else the mean of all
finished units; the sum is divided by the number of workers.  Finished units of earlier runs
(``execution.jsonl``) count, so a resumed campaign has an estimate from the start.  Messages go
to the terminal at most every ``interval`` seconds; ``progress.json`` in the folder holds the
same for another terminal (``openmm-hybrid fe report DIR``).
"""
import math
import time
from collections import defaultdict
from typing import Dict, Iterable, List, Optional

from ..._util import format_duration, progress
from .graph import CampaignGraph, Unit
from .store import CampaignStore


class CampaignProgress:
    """Counts finished and failed units and ligands; prints and saves the progress."""

    def __init__(self, graph: CampaignGraph, store: CampaignStore, done: Iterable[str], n_workers: int,
                 interval: float = 30.0, failed: Optional[Dict[str, str]] = None):
        self.graph, self.store = graph, store
        self.done = set(done)
        self.failed: Dict[str, str] = dict(failed or {})
        self.n_workers = max(1, n_workers)
        self.interval = interval
        self.last = -math.inf
        self.computed = 0
        self.seconds: Dict[tuple, List[float]] = defaultdict(list)
        self.per_step: Dict[str, List[float]] = defaultdict(list)
        by_id = {u.id: u for u in graph}
        for record in store.executions():
            unit = by_id.get(record.get("unit"))
            if unit is not None:
                self._learn(unit, record)

    def _learn(self, unit: Unit, record: dict) -> None:
        seconds = float(record.get("seconds", 0.0))
        self.seconds[(unit.kind, unit.calculation)].append(seconds)
        if unit.steps:
            self.per_step[unit.calculation].append(seconds / unit.steps)

    def unit_done(self, unit: Unit, record: dict) -> None:
        self.done.add(unit.id)
        self.computed += 1
        self._learn(unit, record)

    def ligand_failed(self, ligand: str, reason: str) -> None:
        self.failed[ligand] = reason

    def estimate(self, unit: Unit) -> Optional[float]:
        """Expected wall seconds of ``unit`` from what ran so far (None: nothing to go by)."""
        same = self.seconds.get((unit.kind, unit.calculation))
        if same:
            return sum(same) / len(same)
        rates = self.per_step.get(unit.calculation)
        if rates and unit.steps:
            return unit.steps * sum(rates) / len(rates)
        everything = [s for values in self.seconds.values() for s in values]
        return sum(everything) / len(everything) if everything else None

    def snapshot(self) -> dict:
        """Units done / total for the campaign and each ligand, and the estimated seconds left."""
        ligands = {}
        left, known = 0.0, True
        for ligand in self.graph.ligands():
            units = self.graph.units_of(ligand)
            done = sum(u.id in self.done for u in units)
            status = "failed" if ligand in self.failed else "done" if done == len(units) else \
                "running" if done else "waiting"
            ligands[ligand] = {"done": done, "total": len(units), "status": status}
            if status == "failed":
                continue
            for unit in units:
                if unit.id not in self.done:
                    seconds = self.estimate(unit)
                    known = known and seconds is not None
                    left += seconds or 0.0
        for ligand, reason in self.failed.items():
            ligands.setdefault(ligand, {"done": 0, "total": 0, "status": "failed"})["reason"] = reason
        live = [u for u in self.graph if u.ligand not in self.failed]
        done = sum(u.id in self.done for u in live)
        return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "units_done": done, "units_total": len(live),
                "units_computed_this_run": self.computed, "workers": self.n_workers,
                "seconds_left": left / self.n_workers if known and done < len(live) else None,
                "ligands": ligands}

    def report(self, force: bool = False) -> Optional[dict]:
        """Print and save the progress (at most every ``interval`` seconds unless ``force``)."""
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return None
        self.last = now
        snap = self.snapshot()
        self.store.write_json("progress.json", snap)
        total = max(snap["units_total"], 1)
        left = snap["seconds_left"]
        eta = f", about {format_duration(left)} left" if left else ""
        states = defaultdict(int)
        for entry in snap["ligands"].values():
            states[entry["status"]] += 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        progress(f"campaign: {snap['units_done']}/{snap['units_total']} units "
                 f"({100 * snap['units_done'] / total:.0f}%){eta}; ligands: {summary}")
        running = [f"{name} {e['done']}/{e['total']}" for name, e in snap["ligands"].items()
                   if e["status"] == "running"]
        if running:
            progress("  " + ", ".join(running))
        return snap
