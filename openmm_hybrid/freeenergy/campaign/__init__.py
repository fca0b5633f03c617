"""Free-energy campaigns over a ligand series, run on Dask.

:func:`run_campaign` (``openmm-hybrid fe campaign``) builds every ligand's systems, embeds them,
and computes the ML/MM end-state corrections of both binding phases (or hydration free energies
of many molecules) as units of work on a Dask cluster: an embedded local cluster by default, a
running scheduler, or batch jobs through dask-jobqueue.

Modules, along the data flow: settings (:class:`CampaignSettings`), series (ligand series, value
tables, the per-ligand build), seeds, graph (units and dependencies), store (the campaign folder,
atomic results), lock (one run per folder), units (the unit functions), executors and cluster
(where units run), progress, driver (the scheduling loop), statistics, results (per ligand and
over the series), plots, report (``campaign.json``, CSV, ``fe report``), campaign
(:func:`run_campaign`).
"""
from .campaign import run_campaign
from .report import summarise
from .settings import CampaignSettings, load_campaign_settings

__all__ = ["run_campaign", "summarise", "CampaignSettings", "load_campaign_settings"]
