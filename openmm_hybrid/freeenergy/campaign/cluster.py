"""Dask set-up: an embedded local cluster sized to the machine, a running scheduler, or a batch
system through dask-jobqueue.

- default: a ``LocalCluster`` of worker processes with one thread each: one worker per visible
  GPU with that GPU as its only device (``CUDA_VISIBLE_DEVICES``) when OpenMM has a CUDA
  platform, otherwise one per CPU core (``workers`` overrides the count);
- ``scheduler="tcp://HOST:PORT"``: a running Dask cluster (``dask scheduler`` + ``dask worker``);
- ``cluster="slurm" | "pbs"`` with a YAML file of dask-jobqueue's ``SLURMCluster`` /
  ``PBSCluster`` arguments, plus ``jobs: N`` (fixed) or ``adapt: {minimum_jobs, maximum_jobs}``.

Workers anywhere must import the same openmm-hybrid and see the campaign folder at the same path
(a shared file system); :func:`check_workers_see` refuses a cluster whose workers do not.
"""
import contextlib
import importlib.util
import os
from pathlib import Path
from typing import Iterator, List, Optional

import distributed
import openmm
import yaml

from ..._util import progress
from ...errors import CampaignError
from .executors import DaskExecutor, SerialExecutor

JOBQUEUE_KINDS = ("slurm", "pbs")
DASHBOARD_ADDRESS = ":8787"


def visible_gpus() -> List[str]:
    """CUDA device ids workers can be given: none unless OpenMM has its CUDA platform."""
    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if "CUDA" not in names:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


def local_cluster(workers: Optional[int] = None, dashboard: bool = True, gpus: Optional[List[str]] = None):
    """A local cluster of single-threaded worker processes: one per GPU (each with its own
    device), else ``workers`` or one per CPU core."""
    gpus = visible_gpus() if gpus is None else gpus
    address = DASHBOARD_ADDRESS if dashboard else None
    if gpus and workers is None:
        return distributed.SpecCluster(workers=gpu_worker_specs(gpus),
                                       scheduler={"cls": distributed.Scheduler,
                                                  "options": {"dashboard_address": address, "dashboard": dashboard}},
                                       name="openmm-hybrid (one worker per GPU)")
    count = workers if workers is not None else os.cpu_count() or 1
    if count < 1:
        raise CampaignError(f"a local cluster needs at least one worker, not {count}")
    return distributed.LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                    dashboard_address=address)


def gpu_worker_specs(gpus: List[str]) -> dict:
    """Dask worker specifications: one single-threaded worker process per GPU, seeing only that GPU."""
    return {f"gpu-{device}": {"cls": distributed.Nanny,
                              "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": str(device)}}}
            for device in gpus}


def jobqueue_cluster(kind: str, config_file, start: bool = True):
    """A dask-jobqueue cluster from a YAML file; ``start`` submits its jobs (``jobs``/``adapt``)."""
    if kind not in JOBQUEUE_KINDS:
        raise CampaignError(f"--cluster must be one of {', '.join(JOBQUEUE_KINDS)}, not {kind!r}")
    if config_file is None:
        raise CampaignError(f"--cluster {kind} needs --cluster-config FILE: a YAML file of dask-jobqueue's "
                            f"{_jobqueue_class_name(kind)} arguments (cores, memory, queue, walltime, "
                            f"job_extra_directives, ...) plus 'jobs: N' or 'adapt: {{maximum_jobs: N}}'")
    path = Path(config_file)
    if not path.is_file():
        raise CampaignError(f"cluster configuration file '{path}' does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CampaignError(f"cannot read cluster configuration file '{path}': {exc}") from exc
    if not isinstance(config, dict):
        raise CampaignError(f"cluster configuration file '{path}' must hold a mapping of settings")
    jobs, adapt = config.pop("jobs", None), config.pop("adapt", None)
    if start and jobs is None and adapt is None:
        raise CampaignError(f"cluster configuration file '{path}': say how many batch jobs to run, 'jobs: N' or "
                            f"'adapt: {{minimum_jobs: 0, maximum_jobs: N}}'")
    if importlib.util.find_spec("dask_jobqueue") is None:
        raise CampaignError(f"--cluster {kind} needs dask-jobqueue: pip install dask-jobqueue")
    import dask_jobqueue
    cls = getattr(dask_jobqueue, _jobqueue_class_name(kind))
    try:
        cluster = cls(**config)
    except (TypeError, ValueError) as exc:
        raise CampaignError(f"cluster configuration file '{path}': {exc}; its keys are dask-jobqueue's "
                            f"{cls.__name__} arguments plus 'jobs' or 'adapt'") from exc
    if start:
        if adapt is not None:
            cluster.adapt(**adapt)
        else:
            cluster.scale(jobs=int(jobs))
    return cluster


def _jobqueue_class_name(kind: str) -> str:
    return {"slurm": "SLURMCluster", "pbs": "PBSCluster"}[kind]


def connect(scheduler: str, timeout_s: float = 30.0) -> distributed.Client:
    """A client of a running Dask scheduler, or a message saying it cannot be reached."""
    try:
        return distributed.Client(scheduler, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise CampaignError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one ('dask scheduler' "
                            f"and 'dask worker ADDRESS' on the machines), check the address, or leave out "
                            f"--scheduler for a local cluster") from None


def check_workers_see(client: distributed.Client, root) -> None:
    """Refuse workers that cannot see the campaign folder (no shared file system)."""
    root = str(Path(root).resolve())
    seen = client.run(os.path.isdir, root)
    blind = sorted(worker for worker, ok in seen.items() if not ok)
    if blind:
        raise CampaignError(f"Dask worker(s) {', '.join(blind)} cannot see the campaign folder '{root}': the "
                            f"workers read and write it, so it must be on a file system they share with this "
                            f"machine, at the same path")


def dashboard_link(client: distributed.Client, local: bool) -> Optional[str]:
    """The Dask dashboard's address, when the scheduler serves one (a local one needs bokeh)."""
    services = client.scheduler_info().get("services", {})
    if "dashboard" not in services or (local and importlib.util.find_spec("bokeh") is None):
        return None
    return client.dashboard_link


@contextlib.contextmanager
def open_executor(root, serial: bool = False, client: Optional[distributed.Client] = None,
                  scheduler: Optional[str] = None, cluster: Optional[str] = None, cluster_config=None,
                  workers: Optional[int] = None, dashboard: bool = True) -> Iterator:
    """The executor of a campaign run; a cluster or client made here is closed afterwards.

    Parameters
    ----------
    root : str or Path
        The campaign folder (checked to be visible from the workers).
    serial : bool
        Run the units in this process, one after the other (no Dask).
    client : distributed.Client, optional
        Use this client (not closed here).
    scheduler : str, optional
        Address of a running Dask scheduler.
    cluster : {"slurm", "pbs"}, optional
        A batch-system cluster through dask-jobqueue, configured by ``cluster_config``.
    workers : int, optional
        Workers of the local cluster (default: one per GPU, else one per CPU core).
    dashboard : bool
        Serve the Dask dashboard of a local cluster (needs bokeh).
    """
    if serial:
        yield SerialExecutor()
        return
    owned_cluster = None
    if client is None:
        if scheduler is not None:
            client, description = connect(scheduler), f"Dask scheduler {scheduler}"
        else:
            if cluster is not None:
                owned_cluster = jobqueue_cluster(cluster, cluster_config)
                description = f"dask-jobqueue {type(owned_cluster).__name__}"
            else:
                owned_cluster = local_cluster(workers, dashboard)
                description = f"local Dask cluster, {len(owned_cluster.workers)} worker processes"
            client = distributed.Client(owned_cluster)
        owned_client = client
    else:
        owned_client, description = None, "the given Dask client"
    try:
        check_workers_see(client, root)
        link = dashboard_link(client, local=owned_cluster is not None)
        progress(f"campaign: running on {description}" + (f"; Dask dashboard: {link}" if link else ""))
        yield DaskExecutor(client, description)
    finally:
        if owned_client is not None:
            owned_client.close()
        if owned_cluster is not None:
            owned_cluster.close()
