"""Scaling: micrographs per minute with the local executor and with 1 and 2 Dask workers on this machine, on
1024² and 4096² simulated micrographs, and the Dask scheduler's overhead per micrograph.

For each size the micrographs are simulated once (4096²: two distinct ones, copied under new names, since
the simulator takes seconds per 4096² micrograph and picking costs the same on copies), imported into a
fresh project per executor, then picked with ``dog`` through :func:`cryopick.pipeline.pick_micrographs`
(preprocess + score + threshold; what ``cryopick pick`` does). Reported per executor:

- ``mic/min``: micrographs / (preprocess + score + threshold time) * 60, cluster start-up excluded
  (reported on its own);
- ``compute s/mic``: reading, preprocessing and scoring one micrograph: with Dask the mean time inside the
  worker task (from the stored candidate records), locally the picking time less the store writes;
- ``writer s/mic``: what the one process that writes the store spends per micrograph storing results (the
  ceiling of any number of workers: 60 / writer s/mic micrographs per minute).

The scheduler overhead is measured with no-op tasks that take the scattered picker payload (what every
micrograph task takes): the round trip per task through ``as_completed`` with 1 and 2 workers.

    nice python benchmarks/bench_scaling.py                      # ~3 minutes on 2 cores
    nice python benchmarks/bench_scaling.py --sizes 1024 --n 8   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def simulate(folder: Path, size: int, n: int, distinct: int) -> list[Path]:
    from cryopick.simulate import SimulationConfig, simulate_dataset

    sim = simulate_dataset(SimulationConfig(shape=(size, size), n_micrographs=min(n, distinct), diameter_px=40.0,
                                            particles_per_micrograph=int(60 * (size / 1024) ** 2), seed=11),
                           folder / "sim")
    originals = sorted(sim.micrographs)
    paths = []
    for i in range(n):
        target = folder / f"mic_{size}_{i:04d}.mrc"
        shutil.copyfile(originals[i % len(originals)], target)
        paths.append(target)
    return paths


class WriterClock:
    """Seconds spent in the store writes of the writer process (put_preprocessed, put_candidates)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def installed(self):
        from cryopick.project import Project

        saved = {name: getattr(Project, name) for name in ("put_preprocessed", "put_candidates")}

        def timed(fn):
            def wrapper(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - t
            return wrapper

        for name, fn in saved.items():
            setattr(Project, name, timed(fn))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(Project, name, fn)


def pick_once(paths: list[Path], workdir: Path, executor_options) -> dict:
    from cryopick import progress
    from cryopick.executor import open_executor
    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick.pipeline import StageLog, open_project, pick_micrographs
    from cryopick.stages import import_

    workdir.mkdir(parents=True)
    project = open_project(workdir / "project.h5")
    try:
        names = import_.import_micrographs(project, paths, None)
        picker = make_picker(build_host(), "dog", {}, "cpu", progress=False)
        t = time.perf_counter()
        with open_executor(executor_options) as executor:
            startup = time.perf_counter() - t
            log = StageLog()
            clock = WriterClock()
            with clock.installed():
                outcome = pick_micrographs(project, picker, 40.0, names, log=log, executor=executor)
        picking = log.times["preprocess"] + log.times["score"] + log.times["threshold"]
        if executor_options.kind == "local":  # all in this process: what is not storing is computing
            seconds = [(picking - clock.seconds) / len(names)]
        else:  # read + preprocess + score inside the worker, as it timed them
            seconds = [project.store.attributes(f"/runs/{outcome.run}/candidates/{n}")["seconds"] for n in names]
        progress.echo(f"  {len(names)} micrographs in {picking:.1f}s ({len(names) / picking * 60:.1f}/min)")
        return {"mic_per_min": len(names) / picking * 60, "picking_s": picking, "startup_s": startup,
                "worker_s": statistics.mean(seconds), "writer_s": clock.seconds / len(names),
                "picks": sum(len(p) for p in outcome.picks.values())}
    finally:
        project.store.close()


def _noop(payload, i):
    return i


def scheduler_overhead(n_workers: int, n_tasks: int) -> float:
    """Seconds per no-op task that takes the scattered payload, submitted and gathered as micrograph tasks
    are (submit, as_completed, result)."""
    import distributed

    from cryopick.executor import payload_for
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    picker = make_picker(build_host(), "dog", {}, "cpu", progress=False)
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as client:
        payload = client.scatter(payload_for(picker, [["normalize", {}]], None), broadcast=True, hash=False)
        client.gather(client.map(_noop, [payload] * 20, range(20), pure=False))  # warm up
        t = time.perf_counter()
        futures = [client.submit(_noop, payload, i, pure=False) for i in range(n_tasks)]
        for future in distributed.as_completed(futures):
            future.result()
        return (time.perf_counter() - t) / n_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--n", type=int, nargs="+", default=[24, 8], help="micrographs per size")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", type=int, default=400, help="no-op tasks for the scheduler overhead")
    args = parser.parse_args()
    from cryopick import progress
    from cryopick.executor import ExecutorOptions

    progress.set_quiet(True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        root = Path(tmp)
        for size, n in zip(args.sizes, args.n * len(args.sizes) if len(args.n) == 1 else args.n):
            t = time.perf_counter()
            paths = simulate(root / f"data{size}", size, n, distinct=n if size <= 1024 else 2)
            print(f"{size}²: simulated {n} micrographs in {time.perf_counter() - t:.0f}s", flush=True)
            configs = [("local", ExecutorOptions())] + [(f"dask {w} worker{'s' if w > 1 else ''}",
                                                         ExecutorOptions("dask", workers=w)) for w in args.workers]
            for label, options in configs:
                r = pick_once(paths, root / f"{size}-{label.replace(' ', '_')}", options)
                rows.append((size, n, label, r))
                print(f"{size}² {label:>14}: {r['mic_per_min']:7.1f} mic/min  compute {r['worker_s']:.3f} s/mic  "
                      f"writer {r['writer_s'] * 1000:.1f} ms/mic  start-up {r['startup_s']:.1f}s  "
                      f"({r['picks']} picks)", flush=True)
    overhead = {w: scheduler_overhead(w, args.tasks) for w in args.workers}
    for w, s in overhead.items():
        print(f"scheduler overhead, {w} worker(s): {s * 1000:.2f} ms per task ({args.tasks} no-op tasks)")
    print()
    print("| size | micrographs | executor | mic/min | compute s/mic | writer ms/mic | cluster start-up s |")
    print("|---|---|---|---|---|---|---|")
    for size, n, label, r in rows:
        print(f"| {size}² | {n} | {label} | {r['mic_per_min']:.1f} | {r['worker_s']:.3f} | {r['writer_s'] * 1000:.1f} "
              f"| {r['startup_s']:.1f} |")


if __name__ == "__main__":
    main()
