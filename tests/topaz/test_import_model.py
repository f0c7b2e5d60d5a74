"""Models trained with topaz-em: whole-module and state-dict ``.sav`` files (zip and legacy torch formats)
load into cryopick-topaz networks that compute the same logits, through ``import-model`` and ``pick
--model`` and ``--set checkpoint=``; files that ask for anything but tensors and model classes are refused
without running them. The ``.sav`` files are written by tests/fixtures/make_topaz_sav.py (stand-ins named
as topaz's classes; topaz is not needed)."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick.errors import InputError  # noqa: E402
from cryopick_topaz.import_model import import_topaz_model, read_topaz_model, topaz_network  # noqa: E402
from cryopick_topaz.sav import load_sav  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "make_topaz_sav", Path(__file__).resolve().parents[1] / "fixtures" / "make_topaz_sav.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

@pytest.fixture(autouse=True)
def _pristine_cli(pristine_cli):
    """In-process ``main()`` changes the global CLI (cryopick.testing.pristine_cli undoes it)."""


CASES = [  # (stand-in, state dict?, legacy torch format?)
    ("resnet8", False, False), ("resnet8", True, False), ("resnet8-dropout", False, False),
    ("resnet16", False, False), ("resnet16", True, False), ("resnet8-nobn", True, True),
    ("resnet16-nobn", True, True), ("conv31", False, False), ("conv31", True, True),
]


@pytest.mark.parametrize("kind,state_dict,legacy", CASES)
def test_loaded_network_computes_the_stand_ins_logits(tmp_path, kind, state_dict, legacy):
    model = make.build(kind, seed=3)
    path = make.save(model, tmp_path / f"{kind}.sav", state_dict=state_dict, legacy=legacy)
    assert "topaz" not in __import__("sys").modules  # the stand-ins' module names were removed again
    net = topaz_network(path)
    x = torch.randn(2, 1, 101, 97, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x)
        got = net(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert net.receptive_field == {"resnet8": 71, "resnet16": 91, "conv31": 31}[kind.split("-")[0]]


def test_per_pixel_scores_are_the_strided_logits(tmp_path):
    """Scoring a micrograph (fill mode, tiles) gives at every 4th pixel what the network gives the crop there."""
    from cryopick_topaz.models import score_map

    model = make.build("resnet8", seed=5)
    net = topaz_network(make.save(model, tmp_path / "m.sav"))
    image = np.random.default_rng(0).normal(size=(90, 110)).astype(np.float32)
    scores = score_map(net, image, tile=48, batch=2)
    r = 35  # receptive-field radius of ResNet8
    with torch.no_grad():
        strided = model(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(scores[r: r + 4 * strided.shape[0]: 4, r: r + 4 * strided.shape[1]: 4], strided,
                               rtol=1e-4, atol=1e-4)


def test_import_through_the_picker(tmp_path):
    """The importer's ModelState restores in the topaz picker (architecture from the file, not --set)."""
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    path = make.save(make.build("resnet16", seed=2), tmp_path / "r16.sav")
    state = import_topaz_model(path)
    assert state.config["architecture"]["name"] == "resnet16" and state.config["training"]["sha256"]
    assert all(isinstance(a, np.ndarray) for a in state.arrays.values())
    picker = make_picker(build_host(), "topaz", {"backbone": "conv31", "units": "8"}, "cpu", 0)
    picker.load(state)
    assert picker.model.receptive_field == 91 and picker.facts() == {"topaz-em model": str(path.resolve())}
    image = np.random.default_rng(1).normal(size=(70, 80)).astype(np.float32)
    from cryopick_topaz.models import score_map

    np.testing.assert_allclose(picker.score_map(image, tta=1), score_map(topaz_network(path), image), atol=1e-4)


def test_import_model_and_pick_with_it(tmp_path, monkeypatch):
    from cryopick.cli.main import main
    from cryopick.simulate import make_demo

    monkeypatch.chdir(tmp_path)
    demo = make_demo(tmp_path / "demo")
    mics = [str(p) for p in demo.micrographs][:2]
    assert main(["import", "-P", "p.h5", "-q", "--micrographs", *mics, "--diameter", "40"]) == 0
    sav = make.save(make.build("resnet8", seed=1), tmp_path / "model.sav")
    assert main(["import-model", "-P", "p.h5", "topaz", str(sav), "--name", "mine", "-q"]) == 0
    assert main(["pick", "-P", "p.h5", "--picker", "topaz", "--model", "mine", "--threshold", "topk:5", "-q"]) == 0
    from cryopick.pipeline import open_project

    proj = open_project(Path("p.h5"), "r")
    try:
        info = proj.store.attributes("/models/mine")
        runs = proj.store.children("/runs")
    finally:
        proj.store.close()
    assert info["picker"] == "topaz" and info["importer"] == "topaz-em" and info["imported_from"] == str(sav.resolve())
    assert len(runs) == 1
    # a model of another picker, or an unknown ID, is a one-line error
    assert main(["pick", "-P", "p.h5", "--picker", "dog", "--model", "mine", "-q"]) == 2
    assert main(["pick", "-P", "p.h5", "--picker", "topaz", "--model", "nope", "-q"]) == 2


def test_checkpoint_setting_picks_without_training_or_labels(tmp_path):
    from cryopick.pipeline import RunOptions, run_pipeline
    from cryopick.simulate import make_demo

    demo = make_demo(tmp_path / "demo")
    sav = make.save(make.build("conv31", seed=4), tmp_path / "c31.sav")
    summary = run_pipeline(RunOptions(picker="topaz", micrographs=str(demo.micrographs[0]), diameter="40",
                                      out=tmp_path / "out", settings={"checkpoint": str(sav)}))
    assert summary["model"] == {"topaz-em model": str(sav.resolve())}
    assert summary["resumed"]["train"] == 0 and summary["micrographs"] == 1


# ------------------------------------------------------------------------------------- refused files
class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _raw_pickle(path: Path, target: Path) -> Path:
    path.write_bytes(pickle.dumps({"classifier.weight": _Evil(target)}, protocol=2))
    return path


def _zip_pickle(path: Path, target: Path) -> Path:
    buffer = io.BytesIO()
    torch.save({"features": _Evil(target)}, buffer)  # saving does not run it; loading with pickle would
    path.write_bytes(buffer.getvalue())
    with zipfile.ZipFile(path) as z:
        assert any(n.endswith("data.pkl") for n in z.namelist())
    return path


@pytest.mark.parametrize("write", [_raw_pickle, _zip_pickle], ids=["raw-pickle", "torch-zip"])
def test_malicious_sav_is_refused_and_not_run(tmp_path, write):
    target = tmp_path / "pwned"
    sav = write(tmp_path / "evil.sav", target)
    with pytest.raises(InputError, match=r"evil\.sav: refused to load: the file asks for (posix|os|nt)\.system"):
        read_topaz_model(sav)
    assert not target.exists()
    # the same through the command: one error line, exit status 2, nothing run, nothing stored
    from cryopick.cli.main import main

    assert main(["import-model", "-P", str(tmp_path / "p.h5"), "topaz", str(sav), "-q"]) == 2
    assert not target.exists()


def test_other_refused_globals_and_non_models(tmp_path):
    evil = tmp_path / "eval.sav"
    evil.write_bytes(b"\x80\x02cbuiltins\neval\nq\x00X\x04\x00\x00\x001+1q\x01\x85q\x02Rq\x03.")
    with pytest.raises(InputError, match="asks for builtins.eval"):
        load_sav(evil)
    numbers = tmp_path / "numbers.sav"
    buffer = io.BytesIO()
    torch.save([1, 2, 3], buffer)
    numbers.write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match="not a topaz-em particle detector.*holds a list"):
        read_topaz_model(numbers)
    odd = tmp_path / "odd.sav"
    torch.save({"features.features.0.conv.weight": torch.zeros(4, 1, 3, 3), "classifier.weight": torch.zeros(1, 4, 1, 1),
                "classifier.bias": torch.zeros(1)}, odd)
    with pytest.raises(InputError, match=r"odd\.sav: .*neither topaz's ResNet8 nor ResNet16"):
        read_topaz_model(odd)
    with pytest.raises(InputError, match="not found"):
        read_topaz_model(tmp_path / "missing.sav")
    junk = tmp_path / "junk.sav"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(InputError, match=r"junk\.sav: is not a readable torch \.sav file"):
        read_topaz_model(junk)


def test_imported_models_survive_prune(tmp_path):
    """An imported model is an input, not a cache: prune keeps it although no run uses it yet."""
    from cryopick.host import build_host
    from cryopick.pipeline import open_project
    from cryopick.stages.train import import_model

    sav = make.save(make.build("conv31", seed=0), tmp_path / "c.sav")
    proj = open_project(tmp_path / "p.h5")
    try:
        key = import_model(proj, build_host(), "topaz", sav)
        assert key.startswith("topaz-import-") and proj.model(key) is not None
        assert proj.prune().models == []
        assert proj.model(key) is not None
        with pytest.raises(InputError, match="no installed plugin imports models for picker 'dog'"):
            import_model(proj, build_host(), "dog", sav)
        with pytest.raises(InputError, match=r"read \.sav, \.pt, \.pth files, not \.bin"):
            import_model(proj, build_host(), "topaz", sav.rename(tmp_path / "c.bin"))
    finally:
        proj.store.close()
