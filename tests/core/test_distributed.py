"""--executor dask: a LocalCluster of 2 worker processes gives exactly the picks of the local executor, also
when a worker is killed mid-run; option and cluster-file errors are one clear line."""

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from cryopick.errors import ConfigError
from cryopick.executor import ExecutorOptions, open_executor
from cryopick.pipeline import RunOptions, open_project, run_pipeline

distributed = pytest.importorskip("distributed")  # the [distributed] extra; requirements-dev.txt installs it


@pytest.fixture(scope="module")
def micrographs(tmp_path_factory):
    from cryopick.simulate import SimulationConfig, simulate_dataset

    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(SimulationConfig(shape=(256, 256), n_micrographs=8, particles_per_micrograph=15,
                                      diameter_px=20.0, seed=3), out)
    return out


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each (what --workers 2 starts). The scheduler's active memory manager is
    off: every 2 s it drops replicas no task is waiting for, so whether the broadcast payload is still on both
    workers when a test looks would depend on timing."""
    import logging

    import dask

    with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.CRITICAL) as c:
            yield c


@pytest.fixture(scope="module")
def local_picks(micrographs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    summary = run_pipeline(RunOptions(picker="dog", micrographs=str(micrographs / "*.mrc"), diameter="20", out=out))
    return summary, _picks(summary)


def _picks(summary):
    project = open_project(Path(summary["project"]), "r")
    try:
        return project.picks(summary["run"]), project.candidates(summary["run"])
    finally:
        project.store.close()


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        for field in ("x", "y", "score"):
            np.testing.assert_array_equal(getattr(a[name], field), getattr(b[name], field), err_msg=name)


def test_dask_workers_pick_exactly_what_the_local_executor_picks(micrographs, cluster, local_picks, tmp_path):
    local, (picks, candidates) = local_picks
    summary = run_pipeline(RunOptions(picker="dog", micrographs=str(micrographs / "*.mrc"), diameter="20",
                                      out=tmp_path, executor=ExecutorOptions("dask", cluster.scheduler_address)))
    assert summary["run"] == local["run"] and summary["picks"] == local["picks"] > 0
    dask_picks, dask_candidates = _picks(summary)
    _assert_same(picks, dask_picks)
    _assert_same(candidates, dask_candidates)


def test_the_picker_reaches_each_worker_once(micrographs, cluster, tmp_path):
    """The payload (picker and model) is scattered to every worker: tasks refer to it, never carry it."""
    from cryopick.executor import DaskExecutor, MicrographJob, payload_for
    from cryopick.host import build_host
    from cryopick.io.micrographs import read_micrograph
    from cryopick.pickers import make_picker

    picker = make_picker(build_host(), "dog", {}, "cpu")
    paths = sorted(micrographs.glob("*.mrc"))
    shape = read_micrograph(paths[0])[0].shape
    with distributed.Client(cluster.scheduler_address) as client:
        # both workers registered before the payload is broadcast (a worker still joining would not get it)
        client.wait_for_workers(2, timeout=60)
        executor = DaskExecutor(client)
        payload = payload_for(picker, [("downsample", {"factor": 1.0}), ("normalize", {})], None)
        results = list(executor.map(payload, [MicrographJob(p.stem, str(p), None, shape, 10.0) for p in paths]))
        assert sorted(r.name for r in results) == [p.stem for p in paths]
        assert all(r.candidates is not None and r.image is None for r in results)
        scattered = executor.scatter(payload)
        holders = client.who_has([scattered])[scattered.key]
        workers = client.nthreads()
        assert len(workers) == 2 and set(holders) == set(workers), (holders, workers)


def test_a_worker_killed_mid_run_loses_no_micrograph(micrographs, local_picks, tmp_path, monkeypatch):
    """A worker process is killed (SIGKILL) while the others still score; Dask reruns its micrographs and
    the run ends with every micrograph, exactly as the local executor picks them."""
    import logging

    from cryopick.project import Project

    local, (picks, _) = local_picks
    killed = []
    put = Project.put_candidates

    def put_then_kill(self, run, name, candidates, seconds):
        put(self, run, name, candidates, seconds)
        if not killed:  # after the first result: the other micrographs are queued or running
            with distributed.Client(cluster.scheduler_address) as client:
                pids = client.run(os.getpid)
                busy = [w for w, keys in client.processing().items() if keys] or list(pids)
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])

    monkeypatch.setattr(Project, "put_candidates", put_then_kill)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster:
        summary = run_pipeline(RunOptions(picker="dog", micrographs=str(micrographs / "*.mrc"), diameter="20",
                                          out=tmp_path, executor=ExecutorOptions("dask", cluster.scheduler_address)))
    assert killed
    assert summary["micrographs"] == 8 and summary["picks"] == local["picks"]
    _assert_same(picks, _picks(summary)[0])


def test_dask_rerun_resumes(micrographs, cluster, tmp_path):
    opts = RunOptions(picker="dog", micrographs=str(micrographs / "*.mrc"), diameter="20", out=tmp_path,
                      executor=ExecutorOptions("dask", cluster.scheduler_address))
    run_pipeline(opts)
    again = run_pipeline(opts)
    assert again["resumed"]["score"] == 8 and again["resumed"]["preprocess"] == 1  # only the first is cached


@pytest.mark.parametrize("options, message", [
    (ExecutorOptions("local", workers=2), "--workers needs --executor dask"),
    (ExecutorOptions("dask", "tcp://h:1", 2), "not --scheduler and --workers"),
    (ExecutorOptions("dask", workers=0), "at least 1"),
])
def test_executor_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        options.check()


def test_without_dask_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'cryopick-core\[distributed\]'"):
        with open_executor(ExecutorOptions("dask", workers=1)):
            pass


def test_cli_executor_options(micrographs, cluster, tmp_path, cli):
    out = cli(["run", "--picker", "dog", "--micrographs", str(micrographs / "*.mrc"), "--diameter", "20",
               "-o", "o", "--executor", "dask", "--scheduler", cluster.scheduler_address, "--json"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "executor: dask scheduler" in out.stderr and '"micrographs": 8' in out.stdout
    bad = cli(["pick", "-P", "o/project.h5", "--workers", "2"], cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --workers needs --executor dask"


@pytest.mark.parametrize("name, index", [(0, 0), (3, 3), ("node01-2", 2), ("SLURMCluster-0-1", 1),
                                         ("tcp://10.0.0.5:40123", 0), ("scheduler", 0)])
def test_each_worker_of_a_node_finds_its_gpu(monkeypatch, name, index):
    from types import SimpleNamespace

    from cryopick.executor import worker_index

    monkeypatch.setattr(distributed, "get_worker", lambda: SimpleNamespace(name=name))
    assert worker_index() == index


def test_cluster_file(tmp_path, monkeypatch):
    from cryopick.jobqueue import cluster_arguments, read_cluster_config, start_cluster

    path = tmp_path / "cluster.yaml"
    path.write_text("queue: gpu\ncores: 16\nmemory: 128GB\ngpus: 4\nwalltime: '04:00:00'\njobs: 2\n")
    config = read_cluster_config(path)
    kwargs = cluster_arguments(config)
    assert config["system"] == "slurm"
    assert kwargs["processes"] == 4 and kwargs["job_extra_directives"] == ["--gres=gpu:4"]
    assert kwargs["queue"] == "gpu" and kwargs["cores"] == 16 and kwargs["memory"] == "128GB"
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ConfigError, match="pip install dask-jobqueue"):
        start_cluster(path)
    path.write_text("cores: 16\nmemory: 1GB\nwalltime: 1:00:00\ngpu: 4\n")
    with pytest.raises(ConfigError, match="unknown key.*gpu.*valid keys"):
        read_cluster_config(path)
    path.write_text("cores: 16\n")
    with pytest.raises(ConfigError, match="missing memory, walltime"):
        read_cluster_config(path)
