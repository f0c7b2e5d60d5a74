"""Meta-tests that keep the documentation honest (STYLE.md 7): every hook, CLI command and store group is
documented, and the store's Python reading examples run."""

import re
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _hook_names():
    from cryopick import hookspecs

    return sorted(n for n in dir(hookspecs) if n.startswith("cryopick_") and callable(getattr(hookspecs, n)))


def test_hookspecs_module_has_hooks():
    assert len(_hook_names()) >= 8


@pytest.mark.parametrize("hook", _hook_names())
def test_every_hook_is_documented(hook):
    text = (DOCS / "hooks.md").read_text()
    assert re.search(rf"^#+ `{hook}`", text, re.M), f"docs/hooks.md has no section for {hook}"
    assert f"def {hook}(" in text, f"docs/hooks.md does not show the signature of {hook}"


def test_every_cli_command_is_documented():
    from cryopick.cli.main import cli

    text = (DOCS / "cli.md").read_text()
    missing = [name for name in cli.commands if f"## `cryopick {name}`" not in text]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_every_store_group_is_documented():
    from cryopick import store

    layout = store.__doc__.split("Layout", 1)[1].split("Crash safety", 1)[0]
    groups = set(re.findall(r"^\s+(/[\w<>/]*)", layout, re.M))
    groups.discard("/")
    assert groups, "no groups found in the store module docstring"
    text = (DOCS / "store.md").read_text()
    missing = [group for group in sorted(groups) if group not in text]
    assert not missing, f"docs/store.md does not describe {missing}"

def test_store_reading_examples_run(tmp_path, monkeypatch):
    """The Python snippets in docs/store.md work on a store written through the project API."""
    from cryopick.particles import Particles
    from cryopick.pipeline import open_project

    out = tmp_path / "cryopick-out"
    out.mkdir()
    mic = tmp_path / "mic_001.mrc"
    import mrcfile

    with mrcfile.new(mic) as m:
        m.set_data(np.zeros((64, 64), np.float32))
        m.voxel_size = 2.0
    project = open_project(out / "project.h5", "a")
    try:
        project.add_micrograph(mic)
        picks = Particles([10.0, 20.0], [30.0, 40.0], [0.9, 0.5])
        project.put_labels("truth", {"mic_001": picks}, "truth.star")
        project.put_candidates("dog-00000000", "mic_001", picks, 0.1)
        project.put_picks("dog-00000000", {"mic_001": picks}, {"mic_001": 0.5}, "otsu")
        project.put_run_info("dog-00000000", picker="dog", config={"sigma_ratio": 1.6}, threshold="otsu",
                             diameter_px=12.0, status="picked", updated=1.0)
    finally:
        project.store.close()

    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "store.md").read_text(), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/store.md", "exec"), {})
