"""Pick speed of cryopick-topaz vs topaz-em (the reference) on the same micrographs and model size.

    python benchmarks/topaz_pick_speed.py --topaz-exe /tmp/topaz-em/bin/topaz --size 1024 --n 4
    python benchmarks/topaz_pick_speed.py --rss-only --size 4096     # peak RSS of scoring one 4096^2 micrograph

Both programs get a resnet8 with ``--units`` units, briefly trained on the first micrograph (the weights only
matter through the number of candidates NMS sees), and pick ``--n`` simulated micrographs of ``--size``^2
(sim:globular, 30 px particles, so both run at downsampling factor 1: the network sees the full size).
"pick" = preprocess (downsampling + GMM normalisation) + score + NMS of one micrograph.

- cryopick-topaz: in one process, per micrograph (median over the micrographs after a warm-up).
- topaz-em: ``topaz preprocess`` and ``topaz extract`` (radius = half the diameter, threshold -6, its default)
  as subprocesses on 1 and on ``--n`` micrographs; per micrograph = (t(n) - t(1)) / (n - 1), so process
  start-up and model loading are not counted; the plain t(n) / n is reported too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def simulate(size: int, n: int, out: Path):
    from cryopick.simulate import SimulationConfig, simulate_dataset, suite_configs

    base = SimulationConfig(shape=(size, size), n_micrographs=n, particles_per_micrograph=int(60 * (size / 1024) ** 2))
    cfg = suite_configs(base, ["globular"])["globular"]
    if not (out / "simulation.json").exists():
        simulate_dataset(cfg, out)
    return sorted(out.glob("sim_*.mrc")), cfg


def rss_child(size: int, units: int, tile: int, batch: int) -> None:
    """Score one random ``size``^2 preprocessed micrograph; print peak RSS (MiB) and seconds as JSON."""
    import torch

    from cryopick.nms import peak_local_max
    from cryopick_topaz.models import build_backbone, score_map

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = build_backbone("resnet8", units).eval()
    img = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
    t = time.perf_counter()
    with torch.inference_mode():
        logits = score_map(model, img, tile=tile, batch=batch)
    picks = peak_local_max(logits, 15)
    print(json.dumps({"size": size, "units": units, "tile": tile, "tile_batch": batch,
                      "seconds": round(time.perf_counter() - t, 2), "candidates": len(picks),
                      "rss_before_mib": round(base, 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topaz-exe", default=None)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="training steps (minibatch 64) for both")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--tile-batch", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--rss-only", action="store_true")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.size, args.units, args.tile, args.tile_batch)
        return 0
    if args.rss_only:
        p = subprocess.run([sys.executable, __file__, "--rss-child", "--size", str(args.size), "--units",
                            str(args.units), "--tile", str(args.tile), "--tile-batch", str(args.tile_batch)],
                           capture_output=True, text=True, check=True)
        print(p.stdout.strip())
        return 0

    import torch

    from cryopick.config import build_config
    from cryopick.io import read_micrograph
    from cryopick.picker import PickerContext, TrainingData, TrainingItem
    from cryopick.preprocess import Downsample, apply_chain
    from cryopick_topaz.gmm import GMMNormalize
    from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker

    work = args.work or Path(tempfile.mkdtemp(prefix="topaz-speed-"))
    mics, sim = simulate(args.size, args.n + 1, work / f"sim-{args.size}")
    train_mic, pick_mics = mics[0], mics[1:]
    settings = {"preset": "fast", "units": str(args.units), "epochs": "1", "epoch_size": str(args.steps),
                "minibatch": "64", "target_diameter_px": f"{sim.diameter_px:g}"}
    cfg = build_config(TopazConfig, settings, PRESETS)
    picker = TopazPicker(cfg, PickerContext(device="cpu", seed=0, progress=False))
    result: dict = {"size": args.size, "n": args.n, "units": args.units, "torch_threads": torch.get_num_threads()}
    # cryopick-topaz
    chain = [Downsample(factor=1.0), GMMNormalize()]
    truth = _truth(work / f"sim-{args.size}" / "truth.star")
    pre = apply_chain(read_micrograph(train_mic)[0], chain)
    t = time.perf_counter()
    picker.train(TrainingData([TrainingItem(train_mic.stem, pre.image, truth[train_mic.stem])], sim.diameter_px))
    result["ours_train_s"] = round(time.perf_counter() - t, 1)
    per, counts = [], []
    for m in [pick_mics[0], *pick_mics]:  # the first one twice: warm-up
        t = time.perf_counter()
        p = apply_chain(read_micrograph(m)[0], chain)
        t_pre = time.perf_counter() - t
        c = picker.score(p.image, sim.diameter_px)
        per.append((t_pre, time.perf_counter() - t - t_pre))
        counts.append(len(c))
    per = np.array(per[1:])
    result.update(ours_preprocess_s=round(float(np.median(per[:, 0])), 3), ours_score_nms_s=round(float(np.median(per[:, 1])), 3),
                  ours_pick_s_per_mic=round(float(np.median(per.sum(1))), 3), ours_candidates=int(np.mean(counts[1:])))
    # topaz-em
    if args.topaz_exe:
        d = work / "topaz-em"
        (d / "pre").mkdir(parents=True, exist_ok=True)
        exe = args.topaz_exe
        timed([exe, "preprocess", "-s", "1", "-o", str(d / "pre"), str(train_mic)])
        with open(d / "targets.txt", "w") as f:
            f.write("image_name\tx_coord\ty_coord\n")
            for x, y in truth[train_mic.stem].xy:
                f.write(f"{train_mic.stem}\t{int(round(x))}\t{int(round(y))}\n")
        (d / "images.txt").write_text(f"image_name\tpath\n{train_mic.stem}\t{d / 'pre' / train_mic.name}\n")
        t = time.perf_counter()
        subprocess.run([exe, "train", "-d", "-1", "--num-workers", "0", "-m", "resnet8", "--units", str(args.units),
                        "--no-pretrained", "--num-epochs", "1", "--epoch-size", str(args.steps), "--minibatch-size",
                        "64", "--minibatch-balance", "0.125", "--learning-rate", "1e-3", "-n",
                        str(len(truth[train_mic.stem])), "--train-images", str(d / "images.txt"), "--train-targets",
                        str(d / "targets.txt"), "--save-prefix", str(d / "model"), "-o", str(d / "train.txt")],
                       check=True, capture_output=True)
        result["topaz_em_train_s"] = round(time.perf_counter() - t, 1)
        model = str(d / "model_epoch1.sav")
        radius = str(int(round(sim.diameter_px / 2)))
        pre_cmd = lambda ms: [exe, "preprocess", "-s", "1", "-o", str(d / "pre"), *map(str, ms)]  # noqa: E731
        ext_cmd = lambda ms: [exe, "extract", "-m", model, "-r", radius, "-d", "-1", "-o",  # noqa: E731
                              str(d / "picks.txt"), *[str(d / "pre" / m.name) for m in ms]]
        t1p, tnp = timed(pre_cmd(pick_mics[:1])), timed(pre_cmd(pick_mics))
        t1e, tne = timed(ext_cmd(pick_mics[:1])), timed(ext_cmd(pick_mics))
        n = len(pick_mics)
        lines = (d / "picks.txt").read_text().splitlines()[1:]
        result.update(topaz_em_preprocess_1=round(t1p, 2), topaz_em_preprocess_n=round(tnp, 2),
                      topaz_em_extract_1=round(t1e, 2), topaz_em_extract_n=round(tne, 2),
                      topaz_em_pick_s_per_mic_marginal=round((tnp - t1p + tne - t1e) / max(n - 1, 1), 3),
                      topaz_em_pick_s_per_mic_with_startup=round((tnp + tne) / n, 3),
                      topaz_em_candidates=len(lines) // n)
        result["speedup_marginal"] = round(result["topaz_em_pick_s_per_mic_marginal"] / result["ours_pick_s_per_mic"], 2)
    print(json.dumps(result, indent=1))
    return 0


def _truth(star: Path):
    import starfile

    from cryopick.particles import Particles

    df = starfile.read(star)
    if isinstance(df, dict):
        df = next(iter(df.values()))
    out = {}
    for name, g in df.groupby("rlnMicrographName"):
        out[Path(str(name)).stem] = Particles(g["rlnCoordinateX"].to_numpy(float), g["rlnCoordinateY"].to_numpy(float))
    return out


if __name__ == "__main__":
    sys.exit(main())
