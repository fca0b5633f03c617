"""Settings of a free-energy campaign: one YAML/JSON file for every ligand of the series.

The sections reuse the single-run settings of :mod:`openmm_hybrid.freeenergy.settings`
(``correction`` is what ``fe endstate`` takes, ``simulation`` and ``alchemical`` what the MM legs
of ``fe hydration`` take), so a campaign ligand computes exactly what those commands compute
for it.  ``execution`` and ``report`` change how the campaign runs and what it writes, never a
number it computes: they are left out of the resume fingerprint.
"""
from dataclasses import dataclass, field
from typing import Optional

from ...errors import FreeEnergyError
from ..settings import (AlchemicalSettings, BuildSettings, CorrectionSettings, MLSettings, SimulationSettings,
                        load_settings, to_dict, validate)

SOLVENTS = ("explicit", "implicit", "vacuum")


@dataclass
class SeriesBuildSettings(BuildSettings):
    """How each ligand's systems are built (besides the :class:`BuildSettings` fields).

    Attributes
    ----------
    solvent : {"explicit", "implicit", "vacuum"}
        Solvent of both phases of a binding campaign (complex and ligand alone).  Hydration
        campaigns always build the molecule in explicit water and in vacuum.
    ionic_strength_molar : float
        Salt added on top of neutralising ions (explicit solvent, binding campaigns).
    ph : float
        pH at which the protein's missing hydrogens are added.
    """

    solvent: str = "explicit"
    ionic_strength_molar: float = 0.15
    ph: float = 7.0


@dataclass
class CampaignMLSettings(MLSettings):
    """The ML/MM end state (besides the :class:`MLSettings` fields).

    Attributes
    ----------
    model_options : dict or None
        Options of the model family, passed to ``create_hybrid_system(model_options=...)``
        (``model_index`` is kept as its own setting for ANI-2x).
    mts_substeps : int or None
        Multiple time steps: the Systems are embedded MTS-ready and every sampling and switching
        step is one BAOAB-RESPA outer step of ``simulation.timestep_fs`` with this many inner
        MM steps (see docs/mts.md); ``None``: single time step.
    """

    model_options: Optional[dict] = None
    mts_substeps: Optional[int] = None


@dataclass
class ExecutionSettings:
    """How the units of work are run (no effect on the results).

    Attributes
    ----------
    max_attempts : int
        Times a unit is submitted when its worker died under it (Dask itself reruns a unit lost
        with a worker up to ``distributed.scheduler.allowed-failures`` times within one attempt).
    progress_interval_s : float
        Seconds between progress messages.
    """

    max_attempts: int = 3
    progress_interval_s: float = 30.0


@dataclass
class ReportSettings:
    """Statistics and plots of the campaign (no effect on the free energies).

    Attributes
    ----------
    bootstrap_samples : int
        Bootstrap replicates of the MAE, RMSE and Kendall tau intervals.
    confidence : float
        Confidence level of those intervals (0.95: 2.5 and 97.5 percentiles).
    plots : bool
        Write the PNG plots.
    """

    bootstrap_samples: int = 1000
    confidence: float = 0.95
    plots: bool = True


@dataclass
class CampaignSettings:
    """``openmm-hybrid fe campaign``.

    Attributes
    ----------
    seed : int or None
        Campaign seed; every ligand's, calculation's and unit's seed derives from it and from
        their names (:mod:`.seeds`).  ``None``: drawn and recorded in ``settings.yaml``.
    build : SeriesBuildSettings
    ml : CampaignMLSettings or None
        The ML/MM end state; ``None`` (hydration campaigns only): MM hydration free energies.
    correction : CorrectionSettings
        The end-state corrections (``lambda_interpolate`` 0 -> 1), the same for every phase.
    simulation : SimulationSettings
        Dynamics of the MM decoupling legs (hydration campaigns).
    alchemical : AlchemicalSettings
        The MM decoupling legs (hydration campaigns).
    execution : ExecutionSettings
    report : ReportSettings
    """

    seed: Optional[int] = None
    build: SeriesBuildSettings = field(default_factory=SeriesBuildSettings)
    ml: Optional[CampaignMLSettings] = field(default_factory=CampaignMLSettings)
    correction: CorrectionSettings = field(default_factory=CorrectionSettings)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    alchemical: AlchemicalSettings = field(default_factory=AlchemicalSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    report: ReportSettings = field(default_factory=ReportSettings)


def validate_campaign(settings: CampaignSettings) -> CampaignSettings:
    """Check every section; raise :class:`FreeEnergyError` naming the first bad value."""
    validate(settings)  # the seed
    for section in (settings.build, settings.correction, settings.simulation, settings.alchemical):
        validate(section)
    if settings.build.solvent not in SOLVENTS:
        raise FreeEnergyError(f"setting 'build.solvent' must be one of {', '.join(SOLVENTS)}, "
                              f"not {settings.build.solvent!r}")
    if settings.build.ionic_strength_molar < 0:
        raise FreeEnergyError(f"setting 'build.ionic_strength_molar' must be >= 0, not "
                              f"{settings.build.ionic_strength_molar}")
    if settings.ml is not None:
        validate(settings.ml)
        if settings.ml.mts_substeps is not None and settings.ml.mts_substeps < 1:
            raise FreeEnergyError(f"setting 'ml.mts_substeps' must be at least 1 (or null), not "
                                  f"{settings.ml.mts_substeps}")
    if settings.execution.max_attempts < 1:
        raise FreeEnergyError(f"setting 'execution.max_attempts' must be at least 1, not "
                              f"{settings.execution.max_attempts}")
    if settings.execution.progress_interval_s <= 0:
        raise FreeEnergyError(f"setting 'execution.progress_interval_s' must be > 0, not "
                              f"{settings.execution.progress_interval_s}")
    if settings.report.bootstrap_samples < 0:
        raise FreeEnergyError(f"setting 'report.bootstrap_samples' must be >= 0, not "
                              f"{settings.report.bootstrap_samples}")
    if not 0 < settings.report.confidence < 1:
        raise FreeEnergyError(f"setting 'report.confidence' must be between 0 and 1, not "
                              f"{settings.report.confidence}")
    return settings


def load_campaign_settings(path=None, overrides=None) -> CampaignSettings:
    """Read campaign settings from a YAML or JSON file (any subset) with ``KEY=VALUE`` overrides."""
    return validate_campaign(load_settings(CampaignSettings, path, overrides))


def result_settings(settings: CampaignSettings) -> dict:
    """The settings that determine the numbers (everything but ``execution`` and ``report``):
    what a resumed campaign must share with the run that started it."""
    data = to_dict(settings)
    data.pop("execution")
    data.pop("report")
    return data
