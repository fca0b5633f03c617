"""The campaign graph: units of work and what each one needs first.

Per ligand:

- ``build``: the ligand's MM Systems (every phase), then per calculation
- ``embed`` (end-state corrections): the ML/MM System with ``lambda_interpolate``;
- NEQ: ``equilibrium_0.s`` and ``equilibrium_1.s`` (equilibrium blocks at lambda = 0 and 1: the
  equilibration for s = 0, then blocks of ``neq.samples_per_segment`` samples, one chain per end
  state, the lambda = 1 chain continuing from the last lambda = 0 sample), ``forward.b`` and
  ``reverse.b`` (batches of ``neq.switches_per_segment`` switches, each from the saved samples
  it starts from, so a batch runs as soon as its samples exist);
- MBAR: ``windowKK.0`` (one window: equilibration and all its samples; window k starts from
  window k - 1's last configuration);
- ``analysis``: the estimate from the calculation's works or reduced potentials.

These are the segments of :mod:`openmm_hybrid.freeenergy.protocols`, with the same stage names and
seeds, so that the units of one calculation compute what ``run_endstate`` computes.  A unit's
identity is ``ligand/calculation/stage.segment``; its seed derives from that (:mod:`.seeds`).
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..protocols import segment_sizes
from ..settings import to_dict
from .seeds import calculation_seed
from .settings import CampaignSettings

BINDING_CALCULATIONS = ("complex", "solvent")
HYDRATION_LEGS = ("mm-solvent", "mm-vacuum")
HYDRATION_CORRECTIONS = ("correction-solvent", "correction-vacuum")
# scheduling order of unit kinds (higher first): finishing chains early keeps every worker busy
PRIORITY = {"build": 50, "embed": 40, "equilibrium": 30, "window": 30, "analysis": 20, "switches": 10}


@dataclass(frozen=True)
class Calculation:
    """One free-energy calculation of a ligand, everything its units need.

    Attributes
    ----------
    ligand, name : str
        ``name``: ``complex``/``solvent`` (binding), ``mm-solvent``/``mm-vacuum``/
        ``correction-solvent``/``correction-vacuum`` (hydration).
    kind : {"endstate", "alchemical"}
        ``lambda_interpolate`` 0 -> 1 of the embedded System, or the MM decoupling leg
        (``lambda_electrostatics``, ``lambda_sterics``) of the built System.
    method : {"neq", "mbar"}
    phase : str
        The build phase whose System it uses (``complex``, ``solvent``, ``vacuum``).
    seed : int
    settings : dict
        ``correction`` (end-state) or ``{"simulation", "sampling", "alchemical", "min_overlap"}``
        (alchemical) settings as plain data, ``ml`` for the embedding, and ``plots`` (whether the
        analysis draws the calculation's plots).
    """

    ligand: str
    name: str
    kind: str
    method: str
    phase: str
    seed: int
    settings: dict = field(hash=False, compare=False)


@dataclass(frozen=True)
class Unit:
    """One unit of work: a pure function of its inputs on disk, its settings and its seed."""

    ligand: str
    kind: str
    calculation: str = ""
    stage: str = ""
    segment: int = 0
    deps: Tuple[str, ...] = ()
    steps: int = 0

    @property
    def id(self) -> str:
        if self.stage:
            return f"{self.ligand}/{self.calculation}/{self.stage}.{self.segment}"
        return "/".join(p for p in (self.ligand, self.calculation, self.kind) if p)


class CampaignGraph:
    """Units of every ligand in submission order, and the calculations they belong to."""

    def __init__(self):
        self.units: Dict[str, Unit] = {}
        self.calculations: Dict[Tuple[str, str], Calculation] = {}
        self._ranks: Optional[Dict[Tuple[str, str], int]] = None

    def add(self, unit: Unit) -> Unit:
        self.units[unit.id] = unit
        return unit

    def __len__(self):
        return len(self.units)

    def __iter__(self):
        return iter(self.units.values())

    def ligands(self) -> List[str]:
        return list(dict.fromkeys(u.ligand for u in self))

    def units_of(self, ligand: str) -> List[Unit]:
        return [u for u in self if u.ligand == ligand]

    def calculation_of(self, unit: Unit) -> Optional[Calculation]:
        return self.calculations.get((unit.ligand, unit.calculation))

    def priority(self, unit: Unit) -> int:
        """Scheduling priority (higher first): by kind (:data:`PRIORITY`), then earlier ligands and
        calculations first, so that a worker tends to run one calculation's units back to back
        and finds its System and Context still loaded (:mod:`.units` keeps the last few).
        Call it once the graph is complete."""
        if self._ranks is None:
            self._ranks = {}
            for ligand, calc in self.calculations:
                self._ranks.setdefault((ligand, ""), len(self._ranks))
                self._ranks[(ligand, calc)] = len(self._ranks)
        return PRIORITY[unit.kind] * 1_000_000 - self._ranks.get((unit.ligand, unit.calculation), 0)

    def ready(self, done: Iterable[str], excluded: Iterable[str]) -> List[Unit]:
        """Units not done and not excluded whose dependencies are all done, highest priority first."""
        done, excluded = set(done), set(excluded)
        ready = [u for u in self if u.id not in done and u.id not in excluded and all(d in done for d in u.deps)]
        return sorted(ready, key=lambda u: -self.priority(u))


def add_endstate_units(graph: CampaignGraph, calc: Calculation, after: Sequence[str]) -> None:
    """``embed``, the sampling units and ``analysis`` of an end-state correction."""
    correction = calc.settings["correction"]
    embed = graph.add(Unit(calc.ligand, "embed", calc.name, deps=tuple(after)))
    if calc.method == "neq":
        sampling = _add_neq_units(graph, calc, correction, embed.id)
    else:
        sampling = _add_window_units(graph, calc, correction["mbar"], len(correction["mbar"]["lambdas"]), embed.id,
                                     correction["simulation"]["minimize_iterations"])
    graph.add(Unit(calc.ligand, "analysis", calc.name, deps=tuple(sampling)))
    graph.calculations[(calc.ligand, calc.name)] = calc


def add_alchemical_units(graph: CampaignGraph, calc: Calculation, n_states: int, after: Sequence[str]) -> None:
    """The MBAR windows and ``analysis`` of an MM decoupling leg."""
    settings = calc.settings
    windows = _add_window_units(graph, calc, settings["sampling"], n_states, after[0],
                                settings["simulation"]["minimize_iterations"])
    graph.add(Unit(calc.ligand, "analysis", calc.name, deps=tuple(windows)))
    graph.calculations[(calc.ligand, calc.name)] = calc


def _add_neq_units(graph: CampaignGraph, calc: Calculation, correction: dict, first: str) -> List[str]:
    neq = correction["neq"]
    counts = segment_sizes(neq["n_switches"], neq["samples_per_segment"])
    previous = first
    chains = {}
    for end in (0, 1):
        stage = f"equilibrium_{end}"
        ids = []
        for segment in range(1 + len(counts)):
            steps = neq["equilibration_steps"] if segment == 0 else counts[segment - 1] * neq["steps_between_samples"]
            previous = graph.add(Unit(calc.ligand, "equilibrium", calc.name, stage, segment, (previous,), steps)).id
            ids.append(previous)
        chains[end] = ids
    groups = segment_sizes(neq["n_switches"], neq["switches_per_segment"])
    switches = []
    for direction, end in (("forward", 0), ("reverse", 1)):
        for batch, size in enumerate(groups):
            first_sample = sum(groups[:batch])
            blocks = sorted({sample_block(i, counts) for i in range(first_sample, first_sample + size)})
            unit = Unit(calc.ligand, "switches", calc.name, direction, batch,
                        tuple(chains[end][block] for block in blocks), size * (neq["switch_steps"] - 1))
            switches.append(graph.add(unit).id)
    return switches


def _add_window_units(graph: CampaignGraph, calc: Calculation, sampling: dict, n_windows: int, first: str,
                      minimize_iterations: Optional[int]) -> List[str]:
    ids = []
    previous = first
    for k in range(n_windows):
        steps = sampling["equilibration_steps"] + sampling["n_samples"] * sampling["steps_between_samples"]
        previous = graph.add(Unit(calc.ligand, "window", calc.name, f"window{k:02d}", 0, (previous,), steps)).id
        ids.append(previous)
    return ids


def sample_block(index: int, counts: Sequence[int]) -> int:
    """The equilibrium segment (1 ...) that took sample ``index`` (0 ...), given the samples per segment."""
    total = 0
    for segment, count in enumerate(counts, start=1):
        total += count
        if index < total:
            return segment
    raise IndexError(f"sample {index} is beyond the {total} samples of the chain")


def build_unit(graph: CampaignGraph, ligand: str) -> Unit:
    return graph.add(Unit(ligand, "build"))


def make_graph(ligands: Sequence[str], seeds: Dict[str, int], settings: CampaignSettings, hydration: bool,
               n_alchemical_states: int = 0) -> CampaignGraph:
    """The graph of a binding (``complex``, ``solvent``) or hydration campaign.

    Parameters
    ----------
    ligands : sequence of str
        Names of the ligands that can run.
    seeds : dict
        Ligand name -> ligand seed.
    settings : CampaignSettings
    hydration : bool
    n_alchemical_states : int
        States of an MM decoupling leg (hydration).
    """
    graph = CampaignGraph()
    data = to_dict(settings)
    for ligand in ligands:
        build = build_unit(graph, ligand)
        seed = seeds[ligand]
        if hydration:
            for leg, phase in zip(HYDRATION_LEGS, ("solvent", "vacuum")):
                sampling = data["alchemical"][phase]
                calc = Calculation(ligand, leg, "alchemical", "mbar", phase, calculation_seed(seed, leg),
                                   {"simulation": data["simulation"], "alchemical": data["alchemical"],
                                    "sampling": sampling, "min_overlap": data["correction"]["min_overlap"],
                                    "min_effective_samples": data["correction"]["min_effective_samples"],
                                    "plots": settings.report.plots})
                add_alchemical_units(graph, calc, n_alchemical_states, [build.id])
            names = HYDRATION_CORRECTIONS if settings.ml is not None else ()
            phases = ("solvent", "vacuum")
        else:
            names, phases = BINDING_CALCULATIONS, BINDING_CALCULATIONS
        for name, phase in zip(names, phases):
            calc = Calculation(ligand, name, "endstate", data["correction"]["method"], phase,
                               calculation_seed(seed, name),
                               {"correction": data["correction"], "ml": data["ml"], "plots": settings.report.plots})
            add_endstate_units(graph, calc, [build.id])
    return graph

