"""cryopick.provenance: the code version recipes record in the model files they write."""

import shutil
import subprocess

import pytest

from cryopick.provenance import code_version


def test_outside_a_checkout_the_version_is_unknown(tmp_path):
    assert code_version(tmp_path) == "unknown"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_checkout_reports_its_commit(tmp_path):
    run = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f").write_text("x")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "m")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert code_version(tmp_path) == head
    (tmp_path / "f").write_text("y")
    assert code_version(tmp_path) == head + "-dirty"
