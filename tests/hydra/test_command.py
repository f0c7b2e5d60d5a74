"""``cryopick hydra train`` on data sets given as a folder and as ``key=value``, then ``cryopick run --picker
hydra`` with its model: zero-shot (no labels, precision/recall against the truth) and few-shot (--labels)."""

import json
import shutil

import pytest

pytest.importorskip("torch")

TINY = ["--set", "trunk_channels=8", "--set", "trunk_groups=4", "--set", "blocks=1", "--set", "head_widths=8,8,8,8",
        "--set", "head_groups=4", "--set", "crop=64", "--set", "batch=2"]


@pytest.fixture(autouse=True)
def _pristine_cli(pristine_cli):
    """In-process ``main()`` changes the global CLI (cryopick.testing.pristine_cli undoes it)."""


def _simulated(tmp_path, name, species, seed):
    from cryopick.simulate import SimulationConfig
    from cryopick.simulate.suite import simulate_dataset

    config = SimulationConfig(shape=(128, 128), n_micrographs=2, particles_per_micrograph=8, species=species,
                              diameter_px=22.0, snr=1.0, seed=seed, nuisances=False)
    return simulate_dataset(config, tmp_path / name)


def test_train_command_and_run_with_its_model(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cryopick.cli.main import main
    from cryopick.weights import load_weights
    from cryopick_hydra.commands import hydra_group

    monkeypatch.chdir(tmp_path)
    # one data set in the shared/data/real layout, one as key=value
    folder = tmp_path / "globs"
    sim = _simulated(tmp_path, "g-raw", "globular", 3)
    (folder / "mrc").mkdir(parents=True)
    for p in sim.micrographs:
        shutil.copy(p, folder / "mrc" / p.name)
    shutil.copy(sim.truth, folder / "labels.star")
    (folder / "meta.json").write_text(json.dumps({"diameter_px": 22}))
    other = _simulated(tmp_path, "asym", "asymmetric", 4)
    spec = f"micrographs={tmp_path / 'asym'}/*.mrc,labels={other.truth},diameter=22,name=asym"
    out = tmp_path / "model.h5"
    args = ["train", "--dataset", str(folder), "--dataset", spec, "--out", str(out), "--phase1-steps", "2",
            "--phase2-steps", "1", "--eval-every", "1", "--device", "cpu", *TINY]
    result = CliRunner().invoke(hydra_group, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    model = load_weights(out)
    assert [d["name"] for d in model.config["trained_on"]] == ["globs", "asym"]
    assert all(d["micrographs"] == 1 and d["validation_micrographs"] == 1 for d in model.config["trained_on"])

    # zero-shot through the pipeline: no labels, the truth gives precision and recall
    new = _simulated(tmp_path, "new", "dumbbell", 5)
    mics = [str(p) for p in new.micrographs]
    code = main(["run", "--picker", "hydra", "--micrographs", *mics, "--diameter", "22", "--truth", str(new.truth),
                 "--set", f"checkpoint={out}", "--out", "zero", "--json", "-q", "--device", "cpu"])
    assert code == 0
    # few-shot: a head trained on the labels of the first micrograph
    labels = tmp_path / "few.star"
    import starfile

    table = starfile.read(new.truth)
    starfile.write(table[table["rlnMicrographName"] == new.micrographs[0].name], labels)
    code = main(["run", "--picker", "hydra", "--micrographs", *mics, "--diameter", "22", "--labels", str(labels),
                 "--truth", str(new.truth), "--set", f"checkpoint={out}", "--set", "steps=2", "--set", "crop=64",
                 "--out", "few", "-q", "--device", "cpu"])
    assert code == 0

    # a cryopick project as a data set: its micrographs with labels of the label set, its diameter
    args = ["train", "--dataset", f"project={tmp_path / 'few' / 'project.h5'},name=proj", "--dataset", str(folder),
            "--out", str(tmp_path / "m2.h5"), "--phase1-steps", "1", "--phase2-steps", "0", "--validation", "0",
            "--device", "cpu", *TINY]
    result = CliRunner().invoke(hydra_group, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    trained_on = load_weights(tmp_path / "m2.h5").config["trained_on"]
    assert trained_on[0]["name"] == "proj" and trained_on[0]["micrographs"] == 1
    assert trained_on[0]["particles"] == len(table[table["rlnMicrographName"] == new.micrographs[0].name])


def test_dataset_specs_are_checked(tmp_path):
    from cryopick.errors import InputError
    from cryopick_hydra.commands import parse_dataset

    with pytest.raises(InputError, match="not a data set folder"):
        parse_dataset(str(tmp_path))
    with pytest.raises(InputError, match="missing diameter"):
        parse_dataset("micrographs=a/*.mrc,labels=a.star")
    spec = parse_dataset("micrographs=a/*.mrc,labels=x/ribo.star,diameter=150A,pixel_size=2")
    assert spec["name"] == "ribo" and spec["pixel_size"] == 2.0
    spec = parse_dataset("project=runs/p.h5")
    assert spec["name"] == "p" and spec["labels"] == "train" and spec["diameter"] is None
    with pytest.raises(InputError, match="unknown keys micrographs"):
        parse_dataset("project=p.h5,micrographs=a")
