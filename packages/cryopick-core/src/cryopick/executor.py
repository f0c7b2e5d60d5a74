"""Where per-micrograph work runs: in this process (``--executor local``) or on Dask distributed workers
(``--executor dask``).

With Dask, reading, preprocessing and scoring a micrograph is one task on a worker; the picker (its name,
attrs config, seed and trained :class:`~cryopick.picker.ModelState`) is scattered to every worker once
(:class:`PickerPayload`, broadcast) and rebuilt there through the worker's own plugin host, so workers
need the same cryopick plugins installed. Results come back to this process in the order they finish
(``as_completed``) and only this process writes the project store (the store has a single writer).

Dask reschedules the tasks of a worker that dies; results already received are in the store, so a rerun
after a crash of the whole run resumes. Training always runs in this process (one GPU).

Dask is the optional extra ``cryopick-core[distributed]`` and is imported only when used.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cryopick.errors import ConfigError, CryopickError, InputError
from cryopick.particles import Particles
from cryopick.picker import ModelState

EXECUTORS = ("local", "dask")
INSTALL_HINT = "pip install 'cryopick-core[distributed]'"


@attrs.frozen
class ExecutorOptions:
    """``--executor``, ``--scheduler``, ``--workers`` and ``--cluster``."""

    kind: str = "local"  # local | dask
    scheduler: str | None = None  # tcp://HOST:PORT of a running Dask scheduler
    workers: int | None = None  # LocalCluster worker processes on this machine
    cluster: Path | None = None  # a batch-system (SLURM, PBS, ...) config file, see cryopick.jobqueue

    def check(self) -> None:
        """Refuse contradictory or misplaced options before any work."""
        if self.kind not in EXECUTORS:
            raise ConfigError(f"--executor {self.kind}: use one of {', '.join(EXECUTORS)}")
        given = [o for o, v in (("--scheduler", self.scheduler), ("--workers", self.workers),
                                ("--cluster", self.cluster)) if v]
        if self.kind == "local" and given:
            raise ConfigError(f"{given[0]} needs --executor dask")
        if len(given) > 1:
            raise ConfigError(f"give one of --scheduler, --workers and --cluster, not {' and '.join(given)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: must be at least 1")


@attrs.frozen
class PickerPayload:
    """What a worker needs to rebuild the picker, sent to each worker once.

    ``config`` is the picker's attrs config object itself (its class lives in the plugin, which workers
    import), ``device`` the user's ``--device`` (resolved on the worker, see :func:`worker_device`)."""

    picker: str
    config: Any
    device: str
    seed: int
    model: ModelState | None
    chain: list
    pixel_size_a: float | None
    token: str = attrs.field(factory=lambda: uuid.uuid4().hex)  # the workers' cache key


@attrs.frozen
class MicrographJob:
    """One micrograph for a worker: read ``path``, preprocess, and score when ``diameter_pre`` is given
    (particle diameter in preprocessed pixels); the preprocessed image comes back when ``return_image``."""

    name: str
    path: str
    pixel_size_a: float | None
    shape: tuple[int, int]
    diameter_pre: float | None = None
    return_image: bool = False


@attrs.frozen
class MicrographResult:
    name: str
    factor: tuple[float, float]
    seconds: float
    candidates: Particles | None = None  # original pixels, inside the micrograph
    image: np.ndarray | None = None  # preprocessed (float32), when asked for


def job_for(project, name: str, diameter_pre: float | None = None, return_image: bool = False) -> MicrographJob:
    """The job of micrograph ``name`` of ``project`` (its file path, pixel size and shape)."""
    rec = project.micrograph(name)
    return MicrographJob(name, rec.path, rec.pixel_size_a, tuple(int(s) for s in rec.shape), diameter_pre,
                         return_image)


def payload_for(picker, chain: list, pixel_size_a: float | None, model: ModelState | None = None,
                device: str | None = None) -> PickerPayload:
    """The payload that rebuilds ``picker`` (with ``model`` loaded) on a worker."""
    return PickerPayload(picker.context.name, picker.config, device or picker.context.device, picker.context.seed,
                         model, [list(step) for step in chain], pixel_size_a)


# worker side -----------------------------------------------------------------------------------------------

def worker_index() -> int:
    """This worker's index on its machine: a LocalCluster names workers 0, 1, ...; ``dask worker
    --nworkers N --name NAME`` (and dask-jobqueue with ``processes``) NAME-0, NAME-1, ...; 0 elsewhere
    (a worker without a name is named by its address, whose port says nothing)."""
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):
        return 0
    match = re.fullmatch(r"(?:.*-)?(\d+)", name)
    return int(match.group(1)) if match and "://" not in name else 0


def worker_device(host, picker: str, device: str) -> str:
    """``device`` resolved on this worker; a bare ``cuda`` on a machine with several GPUs becomes
    ``cuda:<worker index mod GPUs>``, so that N workers on an N-GPU node use one GPU each."""
    from cryopick.pickers.build import resolve_picker_device

    resolved = resolve_picker_device(host, picker, device)
    if resolved == "cuda":
        import torch

        count = torch.cuda.device_count()
        if count > 1:
            return f"cuda:{worker_index() % count}"
    return resolved


class MicrographWorker:
    """A built picker and its preprocessing steps: reads, preprocesses and scores micrographs."""

    def __init__(self, picker, steps: list) -> None:
        self.picker = picker
        self.steps = steps
        self.lock = threading.Lock()  # tasks of a multi-threaded Dask worker take turns on the one picker

    @classmethod
    def local(cls, picker, chain: list, pixel_size_a: float | None) -> MicrographWorker:
        """A worker around ``picker`` itself (the local executor)."""
        from cryopick.stages.preprocess import preprocessing_steps

        return cls(picker, preprocessing_steps(picker.context.plugin_host(), [tuple(s) for s in chain],
                                               pixel_size_a))

    @classmethod
    def from_payload(cls, payload: PickerPayload, host) -> MicrographWorker:
        """The picker of ``payload`` rebuilt through ``host`` (this worker's plugins), model loaded."""
        from cryopick.picker import PickerContext

        picker_cls = host.pickers.load(payload.picker)
        device = worker_device(host, payload.picker, payload.device)
        picker = picker_cls(payload.config, PickerContext(device=device, seed=payload.seed, host=host,
                                                          progress=False, name=payload.picker))
        if payload.model is not None:
            picker.load(payload.model)
        worker = cls.local(picker, payload.chain, payload.pixel_size_a)
        return worker

    def process(self, job: MicrographJob) -> MicrographResult:
        """Read, preprocess and (when asked) score one micrograph. The image is cast to float32 as the
        store keeps it, so scores equal those of the local executor's stage loop."""
        from cryopick.io.micrographs import read_micrograph
        from cryopick.preprocess import apply_chain

        with self.lock:
            t0 = time.perf_counter()
            image, _ = read_micrograph(job.path, pixel_size_a=job.pixel_size_a)
            pre = apply_chain(np.asarray(image, dtype=np.float32), self.steps)
            pre_image = pre.image.astype(np.float32)
            factor = (float(pre.factor[0]), float(pre.factor[1]))
            candidates = None
            if job.diameter_pre is not None:
                cands = self.picker.score(pre_image, job.diameter_pre)
                cands = cands.scaled((1.0 / factor[0], 1.0 / factor[1]))
                candidates = cands.subset(cands.inside(job.shape))
            return MicrographResult(job.name, factor, time.perf_counter() - t0, candidates,
                                    pre_image if job.return_image else None)


#: This worker process's plugin host and the worker of the latest payload (one picker in memory).
_PROCESS: dict[str, Any] = {"host": None, "token": None, "worker": None, "lock": threading.Lock()}


def worker_host():
    """This process's plugin host, built once (the first task, or :func:`open_executor`'s warm-up)."""
    with _PROCESS["lock"]:
        if _PROCESS["host"] is None:
            from cryopick.host import build_host

            _PROCESS["host"] = build_host()
        return _PROCESS["host"]


def _warm_up() -> int:
    worker_host()
    return os.getpid()


def process_micrograph(payload: PickerPayload, job: MicrographJob) -> MicrographResult:
    """The task every Dask worker runs: the payload's picker is built on the first task of the process
    and kept for the next."""
    host = worker_host()
    with _PROCESS["lock"]:
        if _PROCESS["token"] != payload.token:
            _PROCESS.update(worker=MicrographWorker.from_payload(payload, host), token=payload.token)
        worker = _PROCESS["worker"]
    return worker.process(job)


# this process ---------------------------------------------------------------------------------------------

class DaskExecutor:
    """Runs :func:`process_micrograph` on the workers of a Dask ``Client``."""

    kind = "dask"

    def __init__(self, client) -> None:
        self.client = client
        self._payloads: dict[str, Any] = {}

    def describe(self) -> str:
        n = len(self.client.nthreads())
        return f"dask scheduler {self.client.scheduler.address} ({n} worker(s) now)"

    def scatter(self, payload: PickerPayload):
        """The payload on every worker (once per payload), as a future tasks take as their argument."""
        if payload.token not in self._payloads:
            self._payloads[payload.token] = self.client.scatter(payload, broadcast=True, hash=False)
        return self._payloads[payload.token]

    def submit(self, payload: PickerPayload, job: MicrographJob):
        return self.client.submit(process_micrograph, self.scatter(payload), job, pure=False,
                                  key=f"cryopick-{job.name}-{uuid.uuid4().hex[:8]}")

    def map(self, payload: PickerPayload, jobs: Iterable[MicrographJob]) -> Iterator[MicrographResult]:
        """Results of ``jobs`` as they finish on any worker. A task whose worker died is run again by
        Dask elsewhere; one that killed several workers (out of memory, say) is an error naming it."""
        from distributed import as_completed

        jobs = list(jobs)
        if not jobs:
            return
        futures = {self.submit(payload, job): job for job in jobs}
        pending = as_completed(list(futures))
        resent = 0
        for future in pending:
            job = futures.pop(future)
            result = self.result(future, job)
            if result is None:  # the payload was lost with every worker that held it: send it again
                resent += 1
                if resent > len(jobs):
                    raise CryopickError("the Dask workers keep losing the picker sent to them (workers "
                                        "restarting?); the micrographs done so far are in the store, rerun "
                                        "to resume")
                self.forget(payload)
                retry = self.submit(payload, job)
                futures[retry] = job
                pending.add(retry)
                continue
            future.release()
            yield result

    def result(self, future, job: MicrographJob) -> MicrographResult | None:
        """The future's result, ``None`` when its input (the scattered payload) was lost."""
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise CryopickError(f"micrograph {job.name} ({job.path}) killed Dask workers repeatedly (out of "
                                "memory?); the micrographs done so far are in the store, rerun to resume") from exc
        except Exception as exc:
            # a task whose input is gone for good (every worker holding the scattered payload died) is
            # cancelled by the scheduler
            if type(exc).__name__ in ("CancelledError", "FutureCancelledError"):
                return None
            raise

    def forget(self, payload: PickerPayload) -> None:
        """Scatter ``payload`` again on its next use (its copies were lost)."""
        self._payloads.pop(payload.token, None)

    def close(self) -> None:
        self._payloads.clear()


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(f"--executor dask needs Dask: {INSTALL_HINT}") from exc
    return distributed


@contextmanager
def open_executor(options: ExecutorOptions | None) -> Iterator[DaskExecutor | None]:
    """``None`` for the local executor; otherwise a :class:`DaskExecutor` on the scheduler at
    ``options.scheduler``, on a batch-system cluster (``options.cluster``) or on a LocalCluster of
    ``options.workers`` processes (default: one per CPU core), shut down on exit (not an outside scheduler)."""
    if options is None or options.kind == "local":
        yield None
        return
    options.check()
    distributed = _import_distributed()
    import logging

    from cryopick import progress

    cluster = None
    try:
        if options.scheduler:
            try:
                client = distributed.Client(options.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler {options.scheduler}: no Dask scheduler answers there ({exc})") \
                    from None
        elif options.cluster:
            from cryopick.jobqueue import start_cluster

            cluster = start_cluster(options.cluster)
            client = distributed.Client(cluster)
        else:
            n = options.workers or os.cpu_count() or 1
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.CRITICAL)
            client = distributed.Client(cluster)
        client.run(_warm_up)  # the workers there now import their plugins before the clock of the first task
        executor = DaskExecutor(client)
        progress.echo(f"executor: {executor.describe()}")
        try:
            yield executor
        finally:
            executor.close()
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def run_local(worker: MicrographWorker, jobs: Iterable[MicrographJob]) -> Iterator[MicrographResult]:
    """``worker.process`` over ``jobs`` in this process (the local executor's streaming path)."""
    for job in jobs:
        yield worker.process(job)
