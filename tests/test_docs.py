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


# -- the README's and the user guide's commands, run as written on small simulated data ----------------------

README = DOCS.parent / "README.md"
STAGES = ("init", "import", "preprocess", "train", "pick", "export", "eval", "show")


def _bash_commands(path):
    """``cryopick ...`` lines of the ```bash blocks, comments removed, in order."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
            if line.startswith("cryopick "):
                lines.append(line)
    return lines


def _staged_example(path):
    """The step-by-step example: from ``cryopick init`` to the last consecutive stage command."""
    commands = _bash_commands(path)
    start = next(i for i, c in enumerate(commands) if c.startswith("cryopick init "))
    staged = []
    for command in commands[start:]:
        if command.split()[1] not in STAGES:
            break
        staged.append(command)
    return staged


def _docs_data(root):
    """data/mic_001.mrc ... (4 Å/px, particles of 40 px = 160 Å), truth.star for all, train.star for half."""
    from cryopick.io.coords import read_coordinates
    from cryopick.io.star import write_star
    from cryopick.simulate import SimulationConfig, simulate_dataset

    sim = simulate_dataset(SimulationConfig(shape=(320, 320), n_micrographs=4, particles_per_micrograph=14,
                                            pixel_size_a=4.0, diameter_px=40.0, snr=0.5, nuisances=False,
                                            seed=5), root / "sim")
    data = root / "data"
    data.mkdir()
    truth = {}
    raw = {Path(k).stem: v for k, v in read_coordinates(sim.truth).items()}
    for i, mic in enumerate(sorted(sim.micrographs), 1):
        name = f"mic_{i:03d}"
        (data / f"{name}.mrc").write_bytes(Path(mic).read_bytes())
        truth[name] = raw[Path(mic).stem]
    (write_star(truth, root / "t")[0]).rename(root / "truth.star")
    (write_star({n: truth[n] for n in sorted(truth)[:2]}, root / "l")[0]).rename(root / "train.star")


#: Where the docs' commands need a smaller model to run in a test: appended to train/pick/run of these pickers.
TINY = {"topaz": ["--set", "preset=tiny", "--set", "expected_particles=14", "--set", "epochs=1", "--set",
                  "epoch_size=10", "--device", "cpu"],
        "mae": ["--set", "preset=cpu", "--device", "cpu"]}


def _run_documented(command, cwd):
    import os
    import shlex
    import subprocess
    import sys

    args = shlex.split(command)[1:]
    picker = args[args.index("--picker") + 1] if "--picker" in args else None
    if args[0] in ("train", "pick", "run", "preprocess") and picker in TINY:
        args += TINY[picker]
    env = {**os.environ, "CRYOPICK_QUIET": "1"}
    out = subprocess.run([sys.executable, "-m", "cryopick.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"`{command}` failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    assert "Traceback" not in out.stderr and "warning" not in out.stderr, f"`{command}`:\n{out.stderr}"
    return out


def test_staged_example_runs_as_written(tmp_path):
    """The step-by-step example of the README and of the user guide runs command by command on simulated
    data, ending with figures (run once when both give the same commands)."""
    pytest.importorskip("matplotlib")
    examples = {doc.name: _staged_example(doc) for doc in (README, DOCS / "user-guide.md")}
    for name, staged in examples.items():
        assert [c.split()[1] for c in staged] == ["init", "import", "train", "pick", "export", "eval", "show"], \
            (name, staged)
    for i, staged in enumerate({tuple(s): None for s in examples.values()}):
        root = tmp_path / str(i)
        root.mkdir()
        _docs_data(root)
        for command in staged:
            _run_documented(command, root)
        assert list((root / "picks").glob("mic_*_autopick.star"))
        assert (root / "figs" / "mic_001_overlay.png").exists() and (root / "figs" / "pr_curve.png").exists()


def test_documented_default_thresholds_match_the_pickers():
    """The user guide's 'Without --threshold the picker's own default is used: `dog` `X`, ...' is the code's."""
    from cryopick.host import build_host

    text = (DOCS / "user-guide.md").read_text()
    host = build_host()
    for name in ("dog", "mae", "topaz"):
        if name not in host.pickers.names():
            continue
        documented = re.search(rf"own default is used:.*?`{name}`\s+`([^`]+)`", text, re.S)
        assert documented, f"docs/user-guide.md does not give {name}'s default threshold"
        assert documented.group(1) == host.pickers.load(name).default_threshold, name


def test_documented_dog_settings_are_valid():
    """Values the docs give for dog's settings are accepted (e.g. polarity)."""
    import attrs

    from cryopick.pickers.dog import DoGConfig

    text = (DOCS / "user-guide.md").read_text()
    polarity = re.search(r"`polarity=([\w|]+)`", text).group(1).split("|")
    for value in polarity:
        DoGConfig(polarity=value)
    fields = {f.name for f in attrs.fields(DoGConfig)}
    line = next(ln for ln in text.splitlines() if ln.startswith("- `dog`:")).split(":", 1)[1]
    line = re.sub(r"\([^)]*\)", "", line)  # explanations in parentheses
    named = {m.split("=")[0] for m in re.findall(r"`([a-z_]+)(?:=[^`]*)?`", line)}
    assert named <= fields, named - fields


def test_no_typos_the_issue_reported():
    for path in [README, *DOCS.glob("*.md")]:
        assert "losss" not in path.read_text(), path
