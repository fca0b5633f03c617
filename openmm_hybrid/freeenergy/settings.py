"""Settings of the free-energy workflows: dataclasses read from and written to YAML or JSON.

Every workflow takes one settings object; the resolved settings (defaults filled in, the
random seed drawn if none was given) are written next to the results as ``settings.yaml``,
so a run is described completely by its output folder.  Plain numbers carry their unit in
their name (``temperature_K``, ``timestep_fs``, ``friction_per_ps``, ``padding_nm``).
"""
import dataclasses
import json
import secrets
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import yaml

from ..errors import FreeEnergyError

METHODS = ("neq", "mbar")


@dataclass
class SimulationSettings:
    """Langevin dynamics (``LangevinMiddleIntegrator``) used for every sampling and switching step.

    Attributes
    ----------
    temperature_K : float
        Temperature in kelvin.
    timestep_fs : float
        Time step in femtoseconds.  The ML region's X-H bonds are flexible (see docs/design.md,
        *Constraints*): keep it at 0.5-1 fs, or about 2 fs with hydrogen mass repartitioning.
    friction_per_ps : float
        Langevin collision rate in 1/ps.
    platform : str or None
        OpenMM platform name; ``None`` picks the fastest one available.
    deterministic : bool
        Make every segment of a run reproducible bit for bit from its seed, so that an
        interrupted and resumed run gives exactly the uninterrupted result: the CPU
        platform then runs on one thread with ``DeterministicForces``, CUDA/OpenCL with
        ``DeterministicForces`` (the Reference platform always is).
    minimize_iterations : int or None
        L-BFGS iterations before equilibration (0: to convergence; ``None``: no minimisation).
    pressure_bar : float or None
        Pressure of a Monte Carlo barostat added to periodic Systems (NPT); ``None``: constant
        volume.  Solvent boxes built by ``Modeller.addSolvent`` start below the equilibrium
        density (0.8-0.95 g/cm^3 for small boxes), which at constant volume leaves voids that
        make cavity formation too cheap (hydrophobic solutes then come out too soluble).
    barostat_interval : int
        Steps between Monte Carlo volume moves.
    """

    temperature_K: float = 298.15
    timestep_fs: float = 1.0
    friction_per_ps: float = 1.0
    platform: Optional[str] = None
    deterministic: bool = True
    minimize_iterations: Optional[int] = 500
    pressure_bar: Optional[float] = 1.01325
    barostat_interval: int = 25


@dataclass
class NEQSettings:
    """Nonequilibrium switching between the end states of ``lambda_interpolate``.

    Attributes
    ----------
    n_switches : int
        Switches in each direction (forward 0 -> 1 and reverse 1 -> 0); also the number of
        equilibrium samples drawn at each end state, one per switch.
    switch_steps : int
        Lambda increments per switch (of ``1 / switch_steps`` each), with one integrator step
        between consecutive increments.
    equilibration_steps : int
        Steps at each end state before the first sample.
    steps_between_samples : int
        Steps between equilibrium samples at an end state.
    samples_per_segment : int
        Equilibrium samples per checkpointed segment.
    switches_per_segment : int
        Switches per checkpointed segment (each segment starts with a Context reset, which
        reloads the ML model: group short switches).
    """

    n_switches: int = 100
    switch_steps: int = 5000
    equilibration_steps: int = 10000
    steps_between_samples: int = 1000
    samples_per_segment: int = 10
    switches_per_segment: int = 1


@dataclass
class SamplingSettings:
    """Equilibrium sampling in each window of an MBAR calculation.

    Attributes
    ----------
    equilibration_steps : int
        Steps in each window before its first sample (windows run in order, each starting
        from the previous window's last configuration).
    n_samples : int
        Samples per window.
    steps_between_samples : int
        Steps between samples.
    samples_per_segment : int
        Samples per checkpointed segment.
    decorrelate : bool
        Keep only statistically independent samples (pymbar's statistical inefficiency of
        each window's neighbouring energy differences) before MBAR.
    """

    equilibration_steps: int = 5000
    n_samples: int = 200
    steps_between_samples: int = 500
    samples_per_segment: int = 50
    decorrelate: bool = True


def _default_lambdas():
    return [round(0.1 * i, 10) for i in range(11)]


@dataclass
class MBARSettings(SamplingSettings):
    """MBAR over ``lambda_interpolate`` windows.

    Attributes
    ----------
    lambdas : list of float
        Window values of ``lambda_interpolate``, from 0 (MM) to 1 (ML/MM), increasing.
    """

    lambdas: List[float] = field(default_factory=_default_lambdas)


@dataclass
class CorrectionSettings:
    """How an MM -> ML/MM end-state correction (``lambda_interpolate`` 0 -> 1) is computed.

    Attributes
    ----------
    method : {"neq", "mbar"}
        Nonequilibrium switching with BAR (Crooks), or MBAR over lambda windows.
    simulation : SimulationSettings
    neq : NEQSettings
    mbar : MBARSettings
    min_overlap : float
        Smallest acceptable overlap between neighbouring MBAR windows (off-diagonal of
        the overlap matrix) or between forward and reverse work distributions; below it
        the run stops with an error that advises more windows or longer switches.
    min_effective_samples : float
        Fewest effective (independent) samples per switching direction (NEQ) or per state
        (MBAR) for the status ``ok``; below it (or when the two halves of the data disagree)
        the estimate is reported with status ``insufficient_sampling``, because its uncertainty
        cannot be trusted (:func:`~openmm_hybrid.freeenergy.estimators.sampling_problems`).
    """

    method: str = "neq"
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    neq: NEQSettings = field(default_factory=NEQSettings)
    mbar: MBARSettings = field(default_factory=MBARSettings)
    min_overlap: float = 0.03
    min_effective_samples: float = 20.0


@dataclass
class EndstateSettings(CorrectionSettings):
    """``openmm-hybrid fe endstate`` and ``fe binding-correction``.

    Attributes
    ----------
    seed : int or None
        Master random seed; every segment's seed derives from it.  ``None``: one is drawn
        and recorded in ``settings.yaml``.
    """

    seed: Optional[int] = None


BindingSettings = EndstateSettings


@dataclass
class BuildSettings:
    """How the hydration workflow builds the ligand in water and in vacuum.

    Attributes
    ----------
    ligand_ff : str
        ``gaff2`` (AM1-BCC) or ``openff-2.2.0``.
    water_model : str
    padding_nm : float
        Solvent padding (OpenMM meaning: box edge = solute diameter + padding, at least twice it).
    nonbonded_cutoff_nm : float
        PME direct-space cutoff.
    box_shape : {"cube", "dodecahedron", "octahedron"}
    hydrogen_mass_amu : float or None
        Hydrogen mass repartitioning (e.g. 3.0 with a 2 fs time step); ``None``: none.
    """

    ligand_ff: str = "gaff2"
    water_model: str = "tip3p"
    padding_nm: float = 1.0
    nonbonded_cutoff_nm: float = 0.9
    box_shape: str = "dodecahedron"
    hydrogen_mass_amu: Optional[float] = None


def _default_electrostatics():
    return [1.0, 0.75, 0.5, 0.25, 0.0]


def _default_sterics():
    return [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]


@dataclass
class AlchemicalSettings:
    """MM decoupling legs (openmmtools ``AbsoluteAlchemicalFactory``): electrostatics
    switched off first, then Lennard-Jones with a soft core.

    Attributes
    ----------
    electrostatics_lambdas : list of float
        ``lambda_electrostatics`` values from 1 (charged) to 0, with ``lambda_sterics`` = 1.
    sterics_lambdas : list of float
        ``lambda_sterics`` values from 1 to 0 (decoupled), with ``lambda_electrostatics`` = 0.
    softcore_alpha : float
        Soft-core alpha of the Lennard-Jones decoupling (Beutler et al.).
    solvent, vacuum : SamplingSettings
        Sampling in each window of the solvent and vacuum legs.
    """

    electrostatics_lambdas: List[float] = field(default_factory=_default_electrostatics)
    sterics_lambdas: List[float] = field(default_factory=_default_sterics)
    softcore_alpha: float = 0.5
    solvent: SamplingSettings = field(default_factory=SamplingSettings)
    vacuum: SamplingSettings = field(default_factory=lambda: SamplingSettings(
        equilibration_steps=2000, n_samples=200, steps_between_samples=250))


@dataclass
class MLSettings:
    """The ML/MM end state of the hydration workflow's corrections.

    Attributes
    ----------
    model : str
        ``ani2x`` or a TorchScript file.
    embedding : str
        ``mechanical`` (or another registered embedding honouring ``interpolate=True``).
    precision : {"single", "double"}
    model_index : int or None
        ANI-2x: one network of the ensemble (0-7) instead of all eight (about 8 times cheaper).
    embedding_options : dict or None
        Options of the embedding, passed to ``create_hybrid_system``; electrostatic (EMLE):
        ``{emle_model: path.mat, embedding_cutoff: 1.0, ...}`` (see *Electrostatic embedding*).
    """

    model: str = "ani2x"
    embedding: str = "mechanical"
    precision: str = "single"
    model_index: Optional[int] = None
    embedding_options: Optional[dict] = None


@dataclass
class HydrationSettings:
    """``openmm-hybrid fe hydration``.

    Attributes
    ----------
    seed : int or None
        Master random seed (see :class:`EndstateSettings`).
    build : BuildSettings
    simulation : SimulationSettings
        Dynamics of the MM decoupling legs.
    alchemical : AlchemicalSettings
    ml : MLSettings or None
        The ML/MM end state; ``None`` computes the MM hydration free energy alone.
    correction : CorrectionSettings
        End-state corrections in solvent and in vacuum.
    """

    seed: Optional[int] = None
    build: BuildSettings = field(default_factory=BuildSettings)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    alchemical: AlchemicalSettings = field(default_factory=AlchemicalSettings)
    ml: Optional[MLSettings] = field(default_factory=MLSettings)
    correction: CorrectionSettings = field(default_factory=CorrectionSettings)


# ---------------------------------------------------------------------------------------------
# conversion and validation

def to_dict(settings) -> dict:
    """Plain ``dict`` of a settings dataclass (nested dataclasses included)."""
    return dataclasses.asdict(settings)


def from_dict(cls, data: Optional[dict], where: str = ""):
    """Build ``cls`` from a (possibly partial) dict; missing keys keep their defaults.

    Raises
    ------
    FreeEnergyError
        For an unknown key (the message names it and lists the known ones) or a value of
        the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FreeEnergyError(f"settings{' ' + where if where else ''}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise FreeEnergyError(f"unknown setting(s) {', '.join(repr(_join(where, u)) for u in unknown)}; known "
                              f"settings{' in ' + repr(where) if where else ''}: {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, _join(where, name))
    return cls(**kwargs)


def _join(where, name):
    return f"{where}.{name}" if where else name


def _convert(hint, value, where):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union and type(None) in args:
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _convert(hint, value, where)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise FreeEnergyError(f"setting {where!r} must be a list, not {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FreeEnergyError(f"setting {where!r} must be a number, not {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise FreeEnergyError(f"setting {where!r} must be an integer, not {value!r}")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise FreeEnergyError(f"setting {where!r} must be true or false, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise FreeEnergyError(f"setting {where!r} must be a string, not {value!r}")
        return value
    return value


def apply_overrides(data: dict, overrides) -> dict:
    """Apply ``["neq.n_switches=20", "simulation.platform=CPU", ...]`` to a settings dict
    (values are parsed as YAML, so ``0.5``, ``true``, ``[0, 0.5, 1]`` and ``null`` work)."""
    data = json.loads(json.dumps(data))
    for item in overrides or ():
        if "=" not in item:
            raise FreeEnergyError(f"--set expects KEY=VALUE (e.g. neq.n_switches=20), not {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise FreeEnergyError(f"--set {key}: {part!r} is not a group of settings")
        node[parts[-1]] = value
    return data


def load_settings(cls, path=None, overrides=None, base: Optional[dict] = None):
    """Read settings of type ``cls`` from a YAML or JSON file (any subset of the keys).

    Parameters
    ----------
    cls : type
        :class:`EndstateSettings`, :class:`HydrationSettings` or :class:`BindingSettings`.
    path : str or Path, optional
        Settings file; omitted: defaults.
    overrides : list of str, optional
        ``KEY=VALUE`` overrides applied after the file (see :func:`apply_overrides`).
    base : dict, optional
        Settings applied before the file.
    """
    data = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FreeEnergyError(f"settings file '{path}' does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise FreeEnergyError(f"cannot read settings file '{path}': {exc}") from exc
        data = _merge(data, loaded or {})
    data = apply_overrides(data, overrides)
    settings = from_dict(cls, data)
    validate(settings)
    return settings


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_seed(settings):
    """Draw a master seed if ``settings.seed`` is ``None`` (in place); returns the settings."""
    if settings.seed is None:
        settings.seed = secrets.randbelow(2 ** 31 - 1) + 1
    return settings


def write_settings(settings, path) -> None:
    """Write settings as YAML (all keys, defaults included)."""
    Path(path).write_text(yaml.safe_dump(to_dict(settings), sort_keys=False))


def _positive(value, where, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise FreeEnergyError(f"setting {where!r} must be {'>= 0' if allow_zero else '> 0'}, not {value}")


def validate(settings) -> None:
    """Check settings values; raise :class:`FreeEnergyError` naming the first bad one."""
    if isinstance(settings, SimulationSettings):
        _positive(settings.temperature_K, "simulation.temperature_K")
        _positive(settings.timestep_fs, "simulation.timestep_fs")
        _positive(settings.friction_per_ps, "simulation.friction_per_ps", allow_zero=True)
        if settings.pressure_bar is not None:
            _positive(settings.pressure_bar, "simulation.pressure_bar")
        _positive(settings.barostat_interval, "simulation.barostat_interval")
        if settings.minimize_iterations is not None:
            _positive(settings.minimize_iterations, "simulation.minimize_iterations", allow_zero=True)
    elif isinstance(settings, NEQSettings):
        for name in ("n_switches", "switch_steps", "steps_between_samples", "samples_per_segment",
                     "switches_per_segment"):
            _positive(getattr(settings, name), f"neq.{name}")
        _positive(settings.equilibration_steps, "neq.equilibration_steps", allow_zero=True)
        if settings.n_switches < 2:
            raise FreeEnergyError("setting 'neq.n_switches' must be at least 2 (BAR needs several works per direction)")
    elif isinstance(settings, SamplingSettings):
        for name in ("n_samples", "steps_between_samples", "samples_per_segment"):
            _positive(getattr(settings, name), name)
        _positive(settings.equilibration_steps, "equilibration_steps", allow_zero=True)
        if isinstance(settings, MBARSettings):
            lambdas = settings.lambdas
            if len(lambdas) < 2 or lambdas[0] != 0.0 or lambdas[-1] != 1.0 or any(
                    b <= a for a, b in zip(lambdas, lambdas[1:])):
                raise FreeEnergyError(f"setting 'mbar.lambdas' must increase from 0 to 1, not {lambdas}")
    elif isinstance(settings, AlchemicalSettings):
        for name, values in (("electrostatics_lambdas", settings.electrostatics_lambdas),
                             ("sterics_lambdas", settings.sterics_lambdas)):
            if len(values) < 2 or values[0] != 1.0 or values[-1] != 0.0 or any(
                    b >= a for a, b in zip(values, values[1:])):
                raise FreeEnergyError(f"setting 'alchemical.{name}' must decrease from 1 to 0, not {values}")
        _positive(settings.softcore_alpha, "alchemical.softcore_alpha")
        validate(settings.solvent)
        validate(settings.vacuum)
    elif isinstance(settings, BuildSettings):
        _positive(settings.padding_nm, "build.padding_nm")
        _positive(settings.nonbonded_cutoff_nm, "build.nonbonded_cutoff_nm")
    elif isinstance(settings, MLSettings):
        if settings.precision not in ("single", "double"):
            raise FreeEnergyError(f"setting 'ml.precision' must be single or double, not {settings.precision!r}")
    if isinstance(settings, CorrectionSettings):
        if settings.method not in METHODS:
            raise FreeEnergyError(f"setting 'method' must be one of {', '.join(METHODS)}, not {settings.method!r}")
        if not 0 <= settings.min_overlap < 1:
            raise FreeEnergyError(f"setting 'min_overlap' must be in [0, 1), not {settings.min_overlap}")
        _positive(settings.min_effective_samples, "min_effective_samples", allow_zero=True)
        validate(settings.simulation)
        validate(settings.neq)
        validate(settings.mbar)
    if isinstance(settings, HydrationSettings):
        validate(settings.build)
        validate(settings.simulation)
        validate(settings.alchemical)
        if settings.ml is not None:
            validate(settings.ml)
        validate(settings.correction)
    seed = getattr(settings, "seed", None)
    if seed is not None and not 0 < seed < 2 ** 31:
        raise FreeEnergyError(f"setting 'seed' must be between 1 and 2^31 - 1, not {seed}")
