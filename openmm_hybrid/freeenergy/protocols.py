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


def segment_sizes(n_items: int, per_segment: int) -> List[int]:
    """Items (samples, switches) per segment: full segments, the last one possibly shorter."""
    full, rest = divmod(n_items, per_segment)
    return [per_segment] * full + ([rest] if rest else [])


def switch_path(switch_steps: int, direction: str) -> np.ndarray:
    """Parameter values of one switch: 0 -> 1 in ``switch_steps`` equal increments
    (``direction="forward"``), or 1 -> 0 (``"reverse"``)."""
    lambdas = np.linspace(0.0, 1.0, switch_steps + 1)
    return lambdas if direction == "forward" else lambdas[::-1]


def run_segment(sampler: StateSampler, start: ChainState, seed: int, values: Dict[str, float],
                equilibration_steps: int = 0, n_samples: int = 0, steps_between_samples: int = 0,
                take_sample=None, minimize_iterations: Optional[int] = None, label: str = "") -> list:
    """One segment of an equilibrium chain at the state ``values``.

    The Context is reset to ``start`` with the integrator seed ``seed``, minimised first when
    ``minimize_iterations`` is not None, run for ``equilibration_steps``, then
    ``take_sample()`` is called after each of ``n_samples`` blocks of ``steps_between_samples``
    steps.  A segment depends only on its arguments, so it gives the same result in any
    process (on a deterministic platform).

    Returns
    -------
    list
        What ``take_sample()`` returned, in order; the chain continues from
        ``sampler.chain_state()``.
    """
    sampler.start_segment(start, seed, values)
    if minimize_iterations is not None:
        sampler.minimize(minimize_iterations)
    sampler.step(equilibration_steps, f"{label} equilibration")
    taken = []
    for _ in range(n_samples):
        sampler.step(steps_between_samples, label)
        taken.append(take_sample())
    return taken


def run_switch_segment(sampler: StateSampler, parameter: str, path: Sequence[float], starts: Sequence[ChainState],
                       seed: int, label: str = "switch") -> List[float]:
    """Nonequilibrium switches of ``parameter`` along ``path``, one from each of ``starts``.

    The Context is reset and seeded with ``seed`` once, for the first switch; the others follow
    on in the same Context.  Each switch changes the parameter from ``path[j - 1]`` to
    ``path[j]`` at fixed configuration (the work increment) with one integrator step between
    consecutive changes.

    Returns
    -------
    list of float
        The reduced work (kT) of each switch.
    """
    works = []
    for n, state in enumerate(starts):
        if n == 0:  # Context reset and seed once per segment; the switches in it follow on
            sampler.start_segment(state, seed, {parameter: path[0]})
        else:
            sampler.load_state(state, {parameter: path[0]})
        work = 0.0
        for j in range(1, len(path)):
            work += sampler.work_increment(parameter, path[j - 1], path[j])
            if j < len(path) - 1:
                sampler.step(1, f"{label} {n}")
        works.append(work)
    return works


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
            run_segment(sampler, initial(), segment_seed_value, values, equilibration_steps=equilibration_steps,
                        minimize_iterations=minimize_iterations, label=label)
            checkpoint.save_segment(stage, (), sampler.chain_state())
        else:
            taken = run_segment(sampler, checkpoint.chain_state(stage), segment_seed_value, values,
                                n_samples=counts[segment - 1], steps_between_samples=steps_between_samples,
                                take_sample=take_sample, label=label)
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
    counts = segment_sizes(sampling.n_samples, sampling.samples_per_segment)
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
    counts = segment_sizes(neq.n_switches, neq.samples_per_segment)
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

    groups = segment_sizes(neq.n_switches, neq.switches_per_segment)
    works = []
    for direction, source in (("forward", "equilibrium_0"), ("reverse", "equilibrium_1")):
        path = switch_path(neq.switch_steps, direction)
        samples = checkpoint.samples(source)
        meter = ProgressMeter(f"{label}: {direction} switches", neq.n_switches, len(checkpoint.records(direction)))
        for segment in range(checkpoint.segments_done(direction), len(groups)):
            first = sum(groups[:segment])
            records = run_switch_segment(sampler, parameter, path, samples[first:first + groups[segment]],
                                         segment_seed(seed, direction, segment),
                                         f"{label} {direction} switches from {first}:")
            checkpoint.save_segment(direction, records, complete=segment == len(groups) - 1)
            meter.update(first + groups[segment])
        works.append(np.array(checkpoint.records(direction), dtype=float))
    return works[0], works[1]
