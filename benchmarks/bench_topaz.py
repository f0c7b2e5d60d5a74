"""Benchmark cryopick-topaz on simulated micrographs: train time, pick time per micrograph, AP / F1.

Usage::

    .venv/bin/python benchmarks/bench_topaz.py [--preset fast] [--n 6] [--size 512] [--set key=value ...]

Trains on the first third of the micrographs (all truth as labels) and evaluates on the rest with
``cryopick.metrics.evaluate`` (IoU matching). "pick" = per-pixel scoring + NMS of one preprocessed
micrograph; "preprocess" = Fourier-crop downsampling + GMM normalisation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cryopick.config import build_config, parse_settings
from cryopick.metrics import evaluate
from cryopick.picker import PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import Downsample, apply_chain
from cryopick.simulate import DEMO_CONFIG, simulate_micrograph
from cryopick_topaz.gmm import GMMNormalize
from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    sim = DEMO_CONFIG.evolve(shape=(args.size, args.size), n_micrographs=args.n)
    cfg = build_config(TopazConfig, {"preset": args.preset, **parse_settings(args.set)}, PRESETS)
    picker = TopazPicker(cfg, PickerContext(device=args.device, seed=0, progress=False))

    mics = [simulate_micrograph(sim, i) for i in range(args.n)]
    t0 = time.perf_counter()
    chain = [Downsample(factor=max(1.0, sim.diameter_px / cfg.target_diameter_px)), GMMNormalize()]
    pre = [apply_chain(m.image, chain) for m in mics]
    t_pre = (time.perf_counter() - t0) / len(mics)
    fx, fy = pre[0].factor
    d = sim.diameter_px / ((fx + fy) / 2)
    n_train = max(1, args.n // 3)
    items = [TrainingItem(m.name, p.image, m.truth.scaled(p.factor)) for m, p in zip(mics, pre)]

    t0 = time.perf_counter()
    picker.train(TrainingData(items[:n_train], d))
    t_train = time.perf_counter() - t0

    cands, times = {}, []
    for m, p in zip(mics[n_train:], pre[n_train:]):
        t0 = time.perf_counter()
        c = picker.score(p.image, d)
        times.append(time.perf_counter() - t0)
        cands[m.name] = c.scaled((1 / fx, 1 / fy))
    cut = picker.info["threshold"]
    picks = {k: c.above(cut) for k, c in cands.items()}
    truth = {m.name: m.truth for m in mics[n_train:]}
    ev = evaluate(picks, truth, diameter_px=sim.diameter_px, candidates=cands).to_dict()
    print(f"preset={args.preset} backbone={cfg.backbone} units={cfg.units} micrographs={args.n}x{args.size}^2 "
          f"(preprocessed {pre[0].image.shape})")
    print(f"train_s={t_train:.1f} preprocess_s_per_mic={t_pre:.3f} pick_s_per_mic={np.median(times):.3f}")
    print(f"threshold={cut:.3f} precision={ev['precision']:.3f} recall={ev['recall']:.3f} f1={ev['f1']:.3f} "
          f"AP={ev['average_precision']:.3f} best_f1={ev['best_f1']:.3f}")


if __name__ == "__main__":
    main()
