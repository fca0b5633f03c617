"""Free-energy workflows on openmm-hybrid Systems.

- :func:`run_endstate` / :func:`run_endstate_directory`: F(ML/MM) - F(MM) of a System with the
  global parameter ``lambda_interpolate`` (nonequilibrium switching + BAR, or MBAR).
- :func:`run_hydration`: absolute hydration free energy, MM (openmmtools alchemical legs, MBAR)
  and ML/MM (plus end-state corrections in water and in vacuum).
- :func:`run_binding_correction`: dF_corr(complex) - dF_corr(solvent), to add to an MM
  binding free energy.
- :mod:`.estimators`: BAR, Jarzynski, MBAR, overlap, convergence (pymbar 4).
- :mod:`.settings`: the settings dataclasses and their YAML/JSON files.

Modules: settings, sampler (states, reduced potentials), checkpoint, protocols (windows,
switching), estimators, endstate, hydration, binding, plots, report, cli.
"""
from .binding import run_binding_correction
from .endstate import run_endstate, run_endstate_directory
from .estimators import FreeEnergy, bar, jarzynski, mbar_analysis, neq_analysis
from .hydration import run_hydration
from .settings import (BindingSettings, CorrectionSettings, EndstateSettings, HydrationSettings, load_settings,
                       write_settings)

__all__ = ["run_endstate", "run_endstate_directory", "run_hydration", "run_binding_correction", "FreeEnergy",
           "bar", "jarzynski", "mbar_analysis", "neq_analysis", "EndstateSettings", "HydrationSettings",
           "BindingSettings", "CorrectionSettings", "load_settings", "write_settings"]
