"""Dask workers on a batch system (SLURM, PBS, SGE, LSF) through dask-jobqueue: ``--cluster FILE``.

The file is YAML (docs/scaling.md)::

    system: slurm          # slurm (default), pbs, sge or lsf
    queue: gpu             # partition / queue
    cores: 16              # CPU cores per job
    memory: 128GB          # memory per job
    gpus: 4                # GPUs per job: one worker process per GPU (each uses cuda:<its index>)
    walltime: "04:00:00"
    jobs: 2                # batch jobs to submit
    account: my-project    # optional
    python: /shared/venv/bin/python     # optional: the workers' Python (same cryopick plugins installed)
    job_extra_directives: ["--constraint=a100"]   # optional, passed to the batch system as is
    local_directory: /scratch           # optional: the workers' spill folder

dask-jobqueue is imported only here: ``pip install dask-jobqueue``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryopick.errors import ConfigError, InputError

SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}
REQUIRED = ("cores", "memory", "walltime")
OPTIONAL = ("system", "queue", "gpus", "jobs", "account", "python", "job_extra_directives", "local_directory")


def read_cluster_config(path: str | Path) -> dict[str, Any]:
    """The checked contents of a cluster file (unknown or missing keys are a :class:`ConfigError`)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"--cluster {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--cluster {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--cluster {path}: expected KEY: VALUE lines (see docs/scaling.md)")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"--cluster {path}: unknown key(s) {', '.join(unknown)}; valid keys: "
                          f"{', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"--cluster {path}: missing {', '.join(missing)}")
    system = str(data.get("system", "slurm")).lower()
    if system not in SYSTEMS:
        raise ConfigError(f"--cluster {path}: system {system!r}; use one of {', '.join(SYSTEMS)}")
    data["system"] = system
    for key in ("cores", "gpus", "jobs"):
        if key in data and not (isinstance(data[key], int) and data[key] >= (0 if key == "gpus" else 1)):
            raise ConfigError(f"--cluster {path}: {key} must be a whole number, got {data[key]!r}")
    return data


def cluster_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the dask-jobqueue cluster class: ``processes`` = GPUs per job (one worker per
    GPU; a worker scores one micrograph at a time), and the GPU request in the batch system's own words."""
    gpus = int(config.get("gpus", 0))
    extra = list(config.get("job_extra_directives", []))
    if gpus:
        extra.insert(0, {"slurm": f"--gres=gpu:{gpus}", "pbs": f"-l ngpus={gpus}", "sge": f"-l gpu={gpus}",
                         "lsf": f'-gpu "num={gpus}"'}[config["system"]])
    kwargs: dict[str, Any] = {"cores": config["cores"], "memory": str(config["memory"]),
                              "walltime": str(config["walltime"]), "processes": max(1, gpus),
                              "job_extra_directives": extra}
    for key in ("queue", "account", "python", "local_directory"):
        if config.get(key) is not None:
            kwargs[key] = str(config[key])
    return kwargs


def start_cluster(path: str | Path):
    """The dask-jobqueue cluster described by the file at ``path``, with its ``jobs`` submitted."""
    config = read_cluster_config(path)
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ConfigError(f"--cluster {path}: batch systems need dask-jobqueue: pip install dask-jobqueue") from exc
    cluster = getattr(dask_jobqueue, SYSTEMS[config["system"]])(**cluster_arguments(config))
    cluster.scale(jobs=int(config.get("jobs", 1)))
    return cluster
