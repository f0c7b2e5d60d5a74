"""Recipe of the generic HydraPicker model that cryopick-hydra ships (``cryopick_hydra/pretrained/``).

HydraPicker's generic head picks data sets it has never seen (thesis §4.6) after multi-data-set training
(§4.3). This script trains it, with ``cryopick_hydra.multitrain.train_multi`` (what ``cryopick hydra train``
runs), on three kinds of labelled data sets, each preprocessed exactly as ``cryopick run --picker hydra``
preprocesses them (particles rescaled to about 22 px):

- the real sets in ``shared/data/real`` (EMPIAR-10028, -10059, -10146: ``labels.star``, ``meta.json`` with
  ``diameter_px``, ``mrc/``);
- our simulator: the three calibrated analogues and every species of the suite (nuisances on, the
  calibrated defaults), ``--sim-per-config`` micrographs each with their true particles;
- ASPIRE's micrographs in the same folder layout (``benchmarks/aspire_sim.py``), with ``--aspire-dir``.

Leave sets out with ``--exclude NAME`` (for leave-one-out benchmarks). Run (preset ``cpu``, 2 CPU cores:
phase 1 of 2000 and phase 2 of 400 minibatches of 8 crops of 128 px, meant to finish within two hours;
``--max-minutes`` scales the steps down if a timing pilot says it would not)::

    python packages/cryopick-hydra/recipes/train_generic.py --aspire-dir /tmp/aspire-data \\
        --out packages/cryopick-hydra/src/cryopick_hydra/pretrained/hydra-generic.h5

The shipped model (2026-11-30) left out the real sets (for zero-shot benchmarks on them), two simulated species and
the ASPIRE volume the benchmarks use (seed 0); its ASPIRE training sets are two other volumes::

    python benchmarks/aspire_sim.py --out /tmp/aspire-train/v11 --seed 11 --snr 0.01 --volume-size 64 \
        --blobs 40 --micrographs 5
    python benchmarks/aspire_sim.py --out /tmp/aspire-train/v12 --seed 12 --snr 0.007 --volume-size 100 \
        --blobs 80 --micrographs 5 --particles 60
    # one folder with both sets (v11-snr0.01 -> ../v11/aspire-snr0.01, v12-snr0.007 -> ../v12/aspire-snr0.007)
    python packages/cryopick-hydra/recipes/train_generic.py --aspire-dir /tmp/aspire-train/all \
        --exclude real:empiar-10028-ribosome --exclude real:empiar-10059-trpv1 \
        --exclude real:empiar-10146-apoferritin --exclude sim:dumbbell --exclude sim:c7_ring \
        --eval-every 300 --max-minutes 100 --out hydra-generic.h5

The shipped model of 2026-12-03 continued that one (``--init``) with a third ASPIRE volume at the benchmarks'
lowest SNR (``aspire_sim.py --out /tmp/aspire-train/v13 --seed 13 --snr 0.005 --volume-size 80 --blobs 56
--micrographs 5 --particles 80``, linked into the same folder as v13-snr0.005), 54 minutes on one core::

    python packages/cryopick-hydra/recipes/train_generic.py --aspire-dir /tmp/aspire-train/all \
        --init packages/cryopick-hydra/src/cryopick_hydra/pretrained/hydra-generic.h5 \
        --exclude real:empiar-10028-ribosome --exclude real:empiar-10059-trpv1 \
        --exclude real:empiar-10146-apoferritin --exclude sim:dumbbell --exclude sim:c7_ring \
        --phase1-steps 1600 --phase2-steps 400 --phase1-lr 5e-4 --eval-every 400 --max-minutes 200 \
        --out hydra-generic.h5

The file records what it was trained on, the settings, the validation AP history and the code version
(git commit). Weights are float16 arrays in HDF5 (no pickle); only the generic head is kept unless
``--keep-dataset-heads``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cryopick.provenance import code_version

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]



def folder_sets(root: Path, kind: str) -> list[dict]:
    """Labelled sets in the ``shared/data/real`` layout under ``root``."""
    from cryopick_hydra.commands import parse_dataset

    sets = []
    for meta in sorted(root.glob("*/meta.json")):
        if (meta.parent / "labels.star").is_file() and (meta.parent / "mrc").is_dir():
            spec = parse_dataset(str(meta.parent))
            spec["name"] = f"{kind}:{meta.parent.name}"
            sets.append(spec)
    return sets


def simulated_sets(picker, n_per_config: int, seed: int, crop: int, validation: int, rng, exclude: set[str]):
    """Our simulator's analogues and suite species as :class:`~cryopick_hydra.train.HydraDataset`."""
    import attrs

    from cryopick.simulate.config import SimulationConfig
    from cryopick.simulate.micrograph import simulate_micrograph
    from cryopick.simulate.suite import ANALOGUES, suite_configs
    from cryopick.stages.preprocess import preprocess_image
    from cryopick_hydra.train import make_dataset

    configs = {f"sim:{k}": v for k, v in ANALOGUES.items()}
    configs.update({f"sim:{k}": v for k, v in suite_configs(SimulationConfig(shape=(1024, 1024))).items()})
    out = []
    for i, (name, cfg) in enumerate(configs.items()):
        if name in exclude:
            continue
        cfg = attrs.evolve(cfg, n_micrographs=n_per_config, seed=seed + 101 * i)
        items, d_pre = [], None
        for j in range(n_per_config):
            mic = simulate_micrograph(cfg, j)
            pre = preprocess_image(picker, np.asarray(mic.image, np.float32), cfg.diameter_px, cfg.pixel_size_a)
            d_pre = cfg.diameter_px / ((pre.factor[0] + pre.factor[1]) / 2)
            items.append((pre.image, mic.truth.scaled(pre.factor)))
        out.append(make_dataset(name, items, d_pre, crop, rng, validation=validation))
        print(f"{name}: {n_per_config} micrographs, d = {cfg.diameter_px:g} px", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real-dir", type=Path, default=REPO.parent / "shared" / "data" / "real")
    ap.add_argument("--aspire-dir", type=Path, default=None)
    ap.add_argument("--sim-per-config", type=int, default=3, help="simulated micrographs per configuration")
    ap.add_argument("--exclude", action="append", default=[],
                    help="leave out this set (e.g. real:empiar-10028-ribosome or sim:dumbbell)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--phase1-steps", type=int, default=2000)
    ap.add_argument("--phase2-steps", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--validation", type=int, default=1, help="held-out micrographs per set")
    ap.add_argument("--max-minutes", type=float, default=110.0,
                    help="scale the steps down so that training should end within this time (a 10-step pilot)")
    ap.add_argument("--phase1-lr", type=float, default=1e-3)
    ap.add_argument("--restart-steps", type=int, default=400, help="period of phase 1's cosine warm restarts")
    ap.add_argument("--init", type=Path, default=None,
                    help="continue from this model's trunk and generic head (a file this recipe wrote)")
    ap.add_argument("--keep-dataset-heads", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import attrs

    from cryopick.host import build_host
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker
    from cryopick.torchutil import seed_everything
    from cryopick.weights import load_weights, save_weights
    from cryopick_hydra.commands import load_dataset
    from cryopick_hydra.multitrain import MultiTrainSettings, train_multi
    from cryopick_hydra.train import Schedule, fit

    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    # no shipped model: this script makes it
    picker = make_picker(build_host(), "hydra", {"preset": args.preset, "checkpoint": "none"}, args.device,
                         args.seed)
    cfg = picker.config
    exclude = set(args.exclude)
    specs = folder_sets(args.real_dir, "real") if args.real_dir.is_dir() else []
    if args.aspire_dir is not None:
        specs += folder_sets(args.aspire_dir, "aspire")
    datasets = []
    for spec in specs:
        if spec["name"] in exclude:
            continue
        datasets.append(load_dataset(picker, spec, cfg.crop, args.validation, rng))
        print(f"{spec['name']}: {len(datasets[-1].images)} + {len(datasets[-1].validation)} micrographs, "
              f"{datasets[-1].particles} particles", flush=True)
    datasets += simulated_sets(picker, args.sim_per_config, args.seed, cfg.crop, args.validation, rng, exclude)
    print(f"{len(datasets)} data sets ready in {time.perf_counter() - t0:.0f} s", flush=True)

    settings = MultiTrainSettings(phase1_steps=args.phase1_steps, phase2_steps=args.phase2_steps, crop=cfg.crop,
                                  batch=cfg.batch, eval_every=args.eval_every, lambda_bias=cfg.lambda_bias,
                                  phase1_lr=args.phase1_lr, restart_steps=args.restart_steps)
    init = load_weights(args.init) if args.init is not None else None
    # a timing pilot on a throw-away network: scale the steps to fit --max-minutes (validations included)
    pilot = picker.context.load("backbone", "hydra")(**picker._architecture())
    heads = {d.name: "generic" for d in datasets}
    # one warm-up step first: the first optimiser step imports parts of torch (seconds)
    fit(pilot, datasets, heads, Schedule(steps=1, batch=cfg.batch, crop=cfg.crop, lr=1e-4), picker._losses(),
        rng=rng, device=args.device, desc="warm-up")
    t1 = time.perf_counter()
    fit(pilot, datasets, heads, Schedule(steps=10, batch=cfg.batch, crop=cfg.crop, lr=1e-4), picker._losses(),
        rng=rng, device=args.device, desc="timing pilot")
    per_step = (time.perf_counter() - t1) / 10
    budget = args.max_minutes * 60 * 0.85 - (time.perf_counter() - t0)
    total = settings.phase1_steps + settings.phase2_steps
    if per_step * total > budget > 0:
        scale = budget / (per_step * total)
        settings = attrs.evolve(settings, phase1_steps=max(1, int(settings.phase1_steps * scale)),
                                phase2_steps=int(settings.phase2_steps * scale))
        print(f"{per_step:.2f} s per step: steps scaled by {scale:.2f} to fit {args.max_minutes:g} minutes", flush=True)

    record = {"recipe": "packages/cryopick-hydra/recipes/train_generic.py", "preset": args.preset,
              "code_version": code_version(REPO), "sim_per_config": args.sim_per_config, "excluded": sorted(exclude),
              "seconds_per_step": round(per_step, 3)}
    if init is not None:
        record["init_file"] = args.init.name
    state = train_multi(picker, datasets, args.out, settings, record=record, seed=args.seed, init=init)
    if not args.keep_dataset_heads:  # the shipped file needs the trunk and the generic head only
        state = load_weights(args.out)
        arrays = {k: v for k, v in state.arrays.items() if k.startswith("trunk.") or k.startswith("heads.generic.")}
        state.config["dataset_heads_dropped"] = [h for h in state.config["heads"] if h != "generic"]
        state.config["heads"] = ["generic"]
        state.config["seconds"] = round(time.perf_counter() - t0, 1)
        save_weights(args.out, ModelState(arrays, state.config))
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.2f} MB) in {time.perf_counter() - t0:.0f} s; best "
          f"{json.dumps(state.config.get('best'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
