import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE_PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


@pytest.fixture
def third_party(monkeypatch):
    """Put the committed example and broken plugin distributions on sys.path."""
    monkeypatch.syspath_prepend(str(FIXTURE_PLUGINS))
    import importlib

    importlib.invalidate_caches()
    return FIXTURE_PLUGINS


def run_cli(args, cwd, extra_path=None, timeout=600, env_extra=None):
    """Run the ``cryopick`` command in a subprocess (as a user would)."""
    env = dict(os.environ)
    env["CRYOPICK_QUIET"] = env.get("CRYOPICK_QUIET", "")
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "cryopick.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    """``cli(args, cwd, extra_path=None)`` runs the ``cryopick`` command in a subprocess."""
    return run_cli
