"""Sampling protocols, checkpointed segment by segment: equilibrium windows (for MBAR) and
two-way nonequilibrium switching of one parameter (for BAR).

Both take a :class:`~.sampler.StateSampler`, a :class:`~.checkpoint.Checkpoint` and a
master seed; each returns the raw data (reduced potentials or works, in kT) for
:mod:`.estimators`.  Stages already complete in the checkpoint are read back, a stage cut
short resumes at its next segment.
"""
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .._util import format_duration, progress
from .checkpoint import Checkpoint, segment_seed
from .sampler import ChainState, StateSampler
from .settings import NEQSettings, SamplingSettings


class ProgressMeter:
    """Progress messages for a stage: done/total, percentage and an estimate of the time left,
    at most every ``interval`` seconds (and always at the end)."""

    def __init__(self, label: str, total: int, done: int = 0, interval: float = 10.0):
        self.label, self.total, self.start_done = label, total, done
        self.interval = interval
        self.t0 = time.perf_counter()
        self.last = -math.inf

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if done < self.total and now - self.last < self.interval:
            return
        self.last = now
        rate = (done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("nan")
        eta = f", about {format_duration(left)} left" if done < self.total and math.isfinite(left) else ""
        progress(f"{self.label}: {done}/{self.total} ({100 * done / max(self.total, 1):.0f}%){eta}")


def _segments(n_samples: int, per_segment: int) -> List[int]:
    """Sample counts of the sampling segments (the last one may be shorter)."""
    full, rest = divmod(n_samples, per_segment)
    return [per_segment] * full + ([rest] if rest else [])


def _run_stage(sampler: StateSampler, checkpoint: Checkpoint, stage: str, seed: int, values: Dict[str, float],
               initial, counts: List[int], equilibration_steps: int, steps_between_samples: int, take_sample,
               keep_samples: bool, minimize_iterations: Optional[int], label: str, on_segment) -> None:
    """Run the segments of one equilibrium stage that the checkpoint does not hold yet.

    Segment 0 starts from ``initial()`` (minimised first when ``minimize_iterations`` is not
    None) and equilibrates; segment s > 0 continues from the saved state and takes
    ``counts[s - 1]`` samples, ``take_sample()`` after every ``steps_between_samples`` steps:
    records for the checkpoint, or (``keep_samples``) the configurations themselves.  Every
    segment runs with its own seed and is saved when it ends; ``on_segment()`` reports progress.
    """
    for segment in range(checkpoint.segments_done(stage), 1 + len(counts)):
        segment_seed_value = segment_seed(seed, stage, segment)
        if segment == 0:
            sampler.start_segment(initial(), segment_seed_value, values)
            if minimize_iterations is not None:
                sampler.minimize(minimize_iterations)
            sampler.step(equilibration_steps, f"{label} equilibration")
            checkpoint.save_segment(stage, (), sampler.chain_state())
        else:
            sampler.start_segment(checkpoint.chain_state(stage), segment_seed_value, values)
            taken = []
            for _ in range(counts[segment - 1]):
                sampler.step(steps_between_samples, label)
                taken.append(take_sample())
            complete = segment == len(counts)
            if keep_samples:
                checkpoint.save_segment(stage, (), taken[-1], samples=taken, complete=complete)
            else:
                checkpoint.save_segment(stage, taken, sampler.chain_state(), complete=complete)
        on_segment()


def run_windows(sampler: StateSampler, states: Sequence[Dict[str, float]], sampling: SamplingSettings,
                checkpoint: Checkpoint, seed: int, start: ChainState, minimize_iterations: Optional[int] = None,
                label: str = "window", names: Optional[Sequence[str]] = None) -> List[np.ndarray]:
    """Equilibrium sampling in each window, in order, with every sample's reduced potential
    at every state.

    Window k starts from the last configuration of window k - 1 (window 0 from ``start``,
    minimised first when ``minimize_iterations`` is not None), equilibrates, then samples.

    Returns
    -------
    list of arrays (n_samples, K)
        Reduced potentials in kT of the parameter-dependent forces (see :mod:`.sampler`).
    """
    K = len(states)
    names = list(names) if names is not None else [str(k) for k in range(K)]
    counts = _segments(sampling.n_samples, sampling.samples_per_segment)
    windows = []
    total = K * (1 + len(counts))
    meter = ProgressMeter(label, total, sum(checkpoint.segments_done(f"window{k:02d}") for k in range(K)))
    for k, values in enumerate(states):
        stage = f"window{k:02d}"
        _run_stage(sampler, checkpoint, stage, seed, values,
                   initial=lambda k=k: start if k == 0 else checkpoint.chain_state(f"window{k - 1:02d}"),
                   counts=counts, equilibration_steps=sampling.equilibration_steps,
                   steps_between_samples=sampling.steps_between_samples,
                   take_sample=lambda values=values: sampler.reduced_potentials(states, values), keep_samples=False,
                   minimize_iterations=minimize_iterations if k == 0 else None, label=f"{label} {names[k]}",
                   on_segment=lambda: meter.update(sum(checkpoint.segments_done(f"window{j:02d}") for j in range(K))))
        windows.append(np.array(checkpoint.records(stage), dtype=float).reshape(-1, K))
    return windows


def run_switching(sampler: StateSampler, parameter: str, neq: NEQSettings, checkpoint: Checkpoint, seed: int,
                  start: ChainState, minimize_iterations: Optional[int] = None, label: str = "switching"):
    """Two-way nonequilibrium switching of ``parameter`` between 0 and 1.

    1. Equilibrium at ``parameter`` = 0 from ``start`` (minimised first when
       ``minimize_iterations`` is not None), then ``n_switches`` samples.
    2. Equilibrium at 1, continuing from the last 0-sample, then ``n_switches`` samples.
    3. Forward switches 0 -> 1 from the 0-samples, reverse 1 -> 0 from the 1-samples: the
       parameter changes by ``1/switch_steps`` at a time, the work of each change is the
       reduced energy difference at fixed configuration, and one integrator step runs
       between consecutive changes (``switch_steps - 1`` steps per switch).

    Returns
    -------
    (ndarray, ndarray)
        Forward and reverse works in kT (the reverse ones for 1 -> 0).
    """
    counts = _segments(neq.n_switches, neq.samples_per_segment)
    for end, value in ((0, 0.0), (1, 1.0)):
        stage = f"equilibrium_{end}"
        meter = ProgressMeter(f"{label}: equilibrium samples at {parameter} = {end}", len(counts) + 1,
                              checkpoint.segments_done(stage))
        _run_stage(sampler, checkpoint, stage, seed, {parameter: value},
                   initial=lambda end=end: start if end == 0 else checkpoint.chain_state("equilibrium_0"),
                   counts=counts, equilibration_steps=neq.equilibration_steps,
                   steps_between_samples=neq.steps_between_samples, take_sample=sampler.chain_state,
                   keep_samples=True, minimize_iterations=minimize_iterations if end == 0 else None,
                   label=f"{label} at {parameter} = {end}",
                   on_segment=lambda stage=stage, meter=meter: meter.update(checkpoint.segments_done(stage)))

    lambdas = np.linspace(0.0, 1.0, neq.switch_steps + 1)
    groups = _segments(neq.n_switches, neq.switches_per_segment)
    works = []
    for direction, source, path in (("forward", "equilibrium_0", lambdas), ("reverse", "equilibrium_1", lambdas[::-1])):
        samples = checkpoint.samples(source)
        meter = ProgressMeter(f"{label}: {direction} switches", neq.n_switches, len(checkpoint.records(direction)))
        for segment in range(checkpoint.segments_done(direction), len(groups)):
            first = sum(groups[:segment])
            records = []
            for i in range(first, first + groups[segment]):
                if i == first:  # Context reset and seed once per segment; the switches in it follow on
                    sampler.start_segment(samples[i], segment_seed(seed, direction, segment), {parameter: path[0]})
                else:
                    sampler.load_state(samples[i], {parameter: path[0]})
                work = 0.0
                for j in range(1, len(path)):
                    work += sampler.work_increment(parameter, path[j - 1], path[j])
                    if j < len(path) - 1:
                        sampler.step(1, f"{label} {direction} switch {i}")
                records.append(work)
            checkpoint.save_segment(direction, records, complete=segment == len(groups) - 1)
            meter.update(first + groups[segment])
        works.append(np.array(checkpoint.records(direction), dtype=float))
    return works[0], works[1]
