"""Does a model trained with topaz-em give the same logits in cryopick as in topaz-em?

    bash benchmarks/topaz_em_env.sh /tmp/topaz-em-venv          # once, about 3 minutes
    nice python benchmarks/topaz_import_check.py --topaz-python /tmp/topaz-em-venv/bin/python

On one simulated micrograph (sim:globular, ``--size``^2, GMM-normalised by cryopick and written as MRC, so
both programs see the same image):

* a ResNet8 (32 units) **trained by topaz-em** (``topaz train`` on two micrographs, ``--epochs`` epochs of
  ``--epoch-size`` minibatches: enough to move every weight and batch-norm statistic away from its
  initial value), saved by topaz as a whole module (``model_epochN.sav``);
* an untrained ``LinearClassifier(ResNet16(units=32))`` saved with ``torch.save`` by topaz-em's python;
* topaz-em's bundled pretrained detectors (``resnet8_u32``, ``resnet8_u64``, ``resnet16_u32``,
  ``resnet16_u64``: legacy-format state dicts), copied out of its package.

topaz-em scores each with ``topaz segment`` (its per-pixel logits, full resolution, written as TIFF);
cryopick imports each file (:func:`cryopick_topaz.import_model.import_topaz_model`, the restricted
unpickler) into the topaz picker and scores the same image with ``TopazPicker.score_map`` (what
``cryopick pick --model`` uses). Printed: the max absolute difference of the logits per model, and the
logits' range for scale. Neither program's randomness matters: the models are fixed files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SAVE_UNTRAINED = """
import sys, torch
from topaz.model.classifier import LinearClassifier
from topaz.model.features.resnet import ResNet16
torch.manual_seed(0)
torch.save(LinearClassifier(ResNet16(units=32)), sys.argv[1])
"""

COPY_PRETRAINED = """
import sys, shutil, importlib.resources as ir
for name in sys.argv[2:]:
    with ir.as_file(ir.files("topaz").joinpath(f"pretrained/detector/{name}.sav")) as p:
        shutil.copy(p, f"{sys.argv[1]}/{name}.sav")
"""


def simulate(out: Path, size: int):
    from cryopick.simulate import SimulationConfig, simulate_dataset, suite_configs

    base = SimulationConfig(shape=(size, size), n_micrographs=2, particles_per_micrograph=int(60 * (size / 1024) ** 2))
    cfg = suite_configs(base, ["globular"])["globular"]
    simulate_dataset(cfg, out)
    return sorted(out.glob("sim_*.mrc"))


def normalise(paths, out: Path) -> list[Path]:
    """GMM-normalised copies (float32 MRC), the images both programs score."""
    import mrcfile

    from cryopick.io.micrographs import read_micrograph
    from cryopick_topaz.gmm import GMMNormalize

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        image = GMMNormalize()(np.asarray(read_micrograph(path)[0], dtype=np.float32)).image.astype(np.float32)
        target = out / path.name
        with mrcfile.new(target, overwrite=True) as m:
            m.set_data(image)
        written.append(target)
    return written


def topaz(python: str, *args: str, cwd: Path) -> None:
    cmd = [python, "-m", "topaz.main", *args] if args[0] != "-c" else [python, *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")


def topaz_logits(python: str, model: str, image: Path, work: Path) -> np.ndarray:
    """``topaz segment -m MODEL``: a .sav file, or the name of a bundled pretrained detector."""
    from PIL import Image

    out = work / f"segment-{Path(model).stem}"
    topaz(python, "segment", "-m", model, "-o", str(out), "-d", "-1", str(image), cwd=work)
    return np.asarray(Image.open(out / f"{image.stem}.tiff"), dtype=np.float32)


def cryopick_logits(model: Path, image_path: Path) -> tuple[np.ndarray, str]:
    import mrcfile

    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick_topaz.import_model import import_topaz_model

    state = import_topaz_model(model)
    picker = make_picker(build_host(), "topaz", {}, "cpu", 0)
    picker.load(state)
    with mrcfile.open(image_path, permissive=True) as m:
        image = np.asarray(m.data, dtype=np.float32)
    return picker.score_map(image, tta=1), state.config["architecture"]["name"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topaz-python", default="/tmp/topaz-em-venv/bin/python")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--epoch-size", type=int, default=25)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="topaz-import-"))
    work.mkdir(parents=True, exist_ok=True)
    py = args.topaz_python

    from cryopick.io.star import read_star

    raw = simulate(work / "sim", args.size)
    images = normalise(raw, work / "normalised")
    truth = read_star(work / "sim" / "truth.star")
    lines = ["image_name\tx_coord\ty_coord"]
    for name, p in truth.items():
        stem = Path(name).stem
        lines += [f"{stem}\t{int(round(x))}\t{int(round(y))}" for x, y in zip(p.x, p.y)]
    (work / "targets.txt").write_text("\n".join(lines) + "\n")

    models = work / "models"
    models.mkdir(exist_ok=True)
    trained = models / f"model_epoch{args.epochs}.sav"
    if not trained.exists():  # a --work folder of an earlier call keeps its trained model
        topaz(py, "train", "--train-images", str(work / "normalised"), "--train-targets", str(work / "targets.txt"),
              "-n", str(len(next(iter(truth.values())))), "--radius", "3", "--model", "resnet8", "--units", "32",
              "--num-epochs", str(args.epochs), "--epoch-size", str(args.epoch_size), "--minibatch-size", "64",
              "--device", "-1", "--num-workers", "0", "--save-prefix", str(models / "model"), cwd=work)
    topaz(py, "-c", SAVE_UNTRAINED, str(models / "untrained_resnet16.sav"), cwd=work)
    pretrained = ["resnet8_u32", "resnet8_u64", "resnet16_u32", "resnet16_u64"]
    topaz(py, "-c", COPY_PRETRAINED, str(models), *pretrained, cwd=work)

    # (file cryopick imports, what topaz segment is given: the file, or a bundled detector's name)
    files = [(trained, str(trained)), (models / "untrained_resnet16.sav", str(models / "untrained_resnet16.sav")),
             *[(models / f"{n}.sav", n) for n in pretrained]]
    image = images[1]  # the second micrograph: topaz trained on both, the scores need not be good
    results = []
    for model, name in files:
        ref = topaz_logits(py, name, image, work)
        ours, arch = cryopick_logits(model, image)
        diff = float(np.max(np.abs(ref - ours)))
        results.append({"model": model.name, "architecture": arch, "shape": list(ours.shape),
                        "max_abs_diff": diff, "logit_range": [float(ref.min()), float(ref.max())]})
        print(f"{model.name:<26} {arch:<9} max |topaz-em - cryopick| = {diff:.3g}   "
              f"(topaz-em logits {ref.min():.2f} .. {ref.max():.2f})", flush=True)
    (work / "topaz_import_check.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'topaz_import_check.json'}")
    if max(r["max_abs_diff"] for r in results) > 1e-3:
        sys.exit("logits differ by more than 1e-3")


if __name__ == "__main__":
    main()
