"""Benchmark of the ``mae`` picker (CryoMAE) on simulated micrographs, with the paper's ablations.

Each variant trains on 15 exemplars of the first simulated micrograph and picks the others; reported per
variant: precision/recall/F1 after the density threshold, AP over the candidates, training time, pick
time per micrograph and the process's peak resident memory. Every variant runs in its own process so
the memory figures do not mix.

Examples::

    .venv/bin/python benchmarks/bench_mae.py                      # 1024^2, default + ablations
    .venv/bin/python benchmarks/bench_mae.py --quick              # 512^2, fewer micrographs, fewer variants
    .venv/bin/python benchmarks/bench_mae.py --variants default,no-scs --set finetune_steps=50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "no-scs": {"scs": "false"},  # Table 3, w/o SCS
    "unadjusted-scs": {"pu": "false"},  # Table 3, w/ L_SCS
    "max-match": {"match": "max"},  # Table 5 (both presets match by max, the paper's default)
    "mean-match": {"match": "mean"},
    "stride-0.086": {"stride": "0.086"},  # Table 7: 14 / 28 / 42 / 56 px of ~163 px particles
    "stride-0.26": {"stride": "0.26"},
    "stride-0.34": {"stride": "0.34"},
}
QUICK = ["default", "no-scs", "max-match"]


def run_variant(settings: dict[str, str], size: int, n_mics: int, diameter: float, snr: float, seed: int,
                exemplars: int = 15) -> dict:
    import numpy as np
    import torch

    from cryopick.config import build_config
    from cryopick.host import build_host
    from cryopick.metrics import evaluate
    from cryopick.picker import PickerContext, TrainingData, TrainingItem
    from cryopick.preprocess import apply_chain
    from cryopick.simulate import SimulationConfig, simulate_micrograph
    from cryopick.threshold import Density
    from cryopick.torchutil import resolve_device

    host = build_host()
    cls = host.pickers.load("mae")
    device = resolve_device(settings.pop("device", "auto"))
    settings.setdefault("preset", cls.default_preset(device))
    config = build_config(cls.Config, settings, cls.presets, owner="mae")
    picker = cls(config, PickerContext(device=device, seed=seed, host=host, progress=False))

    sim = SimulationConfig(shape=(size, size), n_micrographs=n_mics, diameter_px=diameter, snr=snr, seed=seed)
    mics = [simulate_micrograph(sim, i) for i in range(n_mics)]
    steps = [host.preprocessors.load(n)(**p) for n, p in picker.preprocessing(diameter, sim.pixel_size_a)]
    pre = [apply_chain(m.image, steps) for m in mics]
    factor = pre[0].factor
    d_pre = diameter / ((factor[0] + factor[1]) / 2)
    rng = np.random.default_rng(seed)
    labels = mics[0].truth.scaled(factor)
    labels = labels.subset(np.sort(rng.choice(len(labels), min(exemplars, len(labels)), replace=False)))
    data = TrainingData([TrainingItem(mics[0].name, pre[0].image, labels)], d_pre,
                        [TrainingItem(m.name, p.image) for m, p in zip(mics[1:], pre[1:])])

    start = time.perf_counter()
    picker.train(data)
    train_s = time.perf_counter() - start
    candidates, picks, truth, times = {}, {}, {}, []
    for m, p in zip(mics[1:], pre[1:]):
        start = time.perf_counter()
        cands = picker.score(p.image, d_pre)
        times.append(time.perf_counter() - start)
        cands = cands.scaled((1 / factor[0], 1 / factor[1]))
        candidates[m.name] = cands
        picks[m.name] = cands.above(Density().cutoff(cands.score))
        truth[m.name] = m.truth
    ev = evaluate(picks, truth, diameter_px=diameter, candidates=candidates).to_dict()
    return {"precision": ev["precision"], "recall": ev["recall"], "f1": ev["f1"], "ap": ev.get("average_precision"),
            "best_f1": ev.get("best_f1"), "train_s": train_s, "pick_s_per_micrograph": float(np.mean(times)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), "device": device, "preset": settings["preset"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", help=f"comma-separated from {', '.join(VARIANTS)} (default all)")
    ap.add_argument("--quick", action="store_true", help=f"512^2, 3 micrographs, variants {', '.join(QUICK)}")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--micrographs", type=int, default=4, help="first trains, the rest are picked")
    ap.add_argument("--diameter", type=float, default=40.0)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.micrographs = 512, 3
    extra = dict(s.split("=", 1) for s in args.settings)

    if args.one:
        settings = {**extra, **VARIANTS[args.one]}
        result = run_variant(settings, args.size, args.micrographs, args.diameter, args.snr, args.seed)
        print(json.dumps(result))
        return 0

    names = args.variants.split(",") if args.variants else (QUICK if args.quick else list(VARIANTS))
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--size", str(args.size), "--micrographs",
               str(args.micrographs), "--diameter", str(args.diameter), "--snr", str(args.snr),
               "--seed", str(args.seed), *sum((["--set", s] for s in args.settings), [])]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ,
                                                                       "CRYOPICK_QUIET": "1"})
        if out.returncode:
            print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:15s} P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} AP {r['ap'] or 0:.3f} "
              f"train {r['train_s']:.0f}s pick {r['pick_s_per_micrograph']:.2f}s/mic "
              f"({args.size}^2) peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"size": args.size, "micrographs": args.micrographs, "diameter_px": args.diameter,
                       "snr": args.snr, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
