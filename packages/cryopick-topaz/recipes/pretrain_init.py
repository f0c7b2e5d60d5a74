"""A generic initial network for cryopick-topaz (``--set init=FILE``), trained on simulated micrographs.

topaz-em does not train from random weights: unless ``--no-pretrained`` it starts from a detector bundled
with it (resnet8 or resnet16, 32 or 64 units) that was trained on many labelled data sets, and fine-tunes it on
the user's few labels. Nothing of Topaz may be shipped here (GPL-3.0), so this script makes one of our own: a resnet8
with 32 units (the defaults' network) trained with the picker's own PU training (``TopazPicker._fit``:
GE-binomial, rotations and flips, minibatches of 256 crops) on completely labelled micrographs that are not
the benchmark's:

- our simulator: the three calibrated analogues and every species of the suite (nuisances on, the calibrated
  defaults), ``--sim-per-config`` micrographs each with all their particles;
- ASPIRE's micrographs (``benchmarks/aspire_sim.py``; folders with ``labels.star``, ``meta.json`` with
  ``diameter_px`` and ``mrc/``), with ``--aspire-dir``;
- real sets in that folder layout with ``--real-dir`` (none by default: a network for the benchmarks must not have seen
  the real benchmark sets).

Each micrograph is preprocessed exactly as ``cryopick run --picker topaz`` preprocesses it (Fourier
downsampling to particles of ``target_diameter_px``, GMM normalisation).

**Not shipped, not the default**: the network below (2026-11-30; 500 steps, 2 x 250, as 60 minutes allowed on
the loaded 2-core machine) lowered AP on EMPIAR-10059 with 2 x 25 labels from 0.50 (random start) to 0.18;
topaz-em's own ``resnet8_u32`` as the start gave 0.32 (docs/benchmarks.md). It is kept so that the
experiment can be repeated with more steps or other data::

    python benchmarks/aspire_sim.py --out /tmp/aspire-train/v11 --seed 11 --snr 0.01 --volume-size 64 \\
        --blobs 40 --micrographs 5
    python benchmarks/aspire_sim.py --out /tmp/aspire-train/v12 --seed 12 --snr 0.007 --volume-size 100 \\
        --blobs 80 --micrographs 5 --particles 60
    # one folder with both (v11-snr0.01 -> ../v11/aspire-snr0.01, v12-snr0.007 -> ../v12/aspire-snr0.007)
    python packages/cryopick-topaz/recipes/pretrain_init.py --aspire-dir /tmp/aspire-train/all \\
        --exclude sim:dumbbell --exclude sim:c7_ring --steps 2000 \\
        --out topaz-generic.h5
    cryopick run --picker topaz ... --set init=topaz-generic.h5

The held-out species (dumbbell, c7_ring) and the ASPIRE volume of the benchmarks (seed 0) are the same ones
cryopick-hydra's generic model left out. The file records what it was trained on, the settings and the code
version; weights are float16 arrays in HDF5 (no pickle).
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


def folder_items(root: Path, kind: str, picker, exclude: set[str]):
    """``(name, [(image, particles)])`` of each labelled set in the ``shared/data/real`` layout under ``root``,
    preprocessed for ``picker``."""
    from cryopick.io.coords import read_coordinates
    from cryopick.io.micrographs import expand_micrographs, read_micrograph
    from cryopick.stages.preprocess import preprocess_image

    for meta in sorted(root.glob("*/meta.json")):
        name = f"{kind}:{meta.parent.name}"
        if name in exclude or not (meta.parent / "labels.star").is_file():
            continue
        diameter = float(json.loads(meta.read_text())["diameter_px"])
        labels = {Path(k).stem: v for k, v in read_coordinates(meta.parent / "labels.star").items()}
        items = []
        for path in expand_micrographs(str(meta.parent / "mrc")):
            if path.stem in labels:
                image, info = read_micrograph(path)
                pre = preprocess_image(picker, np.asarray(image, np.float32), diameter, info.pixel_size_a)
                items.append((pre.image, labels[path.stem].scaled(pre.factor)))
        yield name, items


def simulated_items(picker, n_per_config: int, seed: int, exclude: set[str]):
    """``(name, [(image, particles)])`` of our simulator's analogues and suite species, preprocessed."""
    import attrs

    from cryopick.simulate.config import SimulationConfig
    from cryopick.simulate.micrograph import simulate_micrograph
    from cryopick.simulate.suite import ANALOGUES, suite_configs
    from cryopick.stages.preprocess import preprocess_image

    configs = {f"sim:{k}": v for k, v in ANALOGUES.items()}
    configs.update({f"sim:{k}": v for k, v in suite_configs(SimulationConfig(shape=(1024, 1024))).items()})
    for i, (name, cfg) in enumerate(configs.items()):
        if name in exclude:
            continue
        cfg = attrs.evolve(cfg, n_micrographs=n_per_config, seed=seed + 101 * i)
        items = []
        for j in range(n_per_config):
            mic = simulate_micrograph(cfg, j)
            pre = preprocess_image(picker, np.asarray(mic.image, np.float32), cfg.diameter_px, cfg.pixel_size_a)
            items.append((pre.image, mic.truth.scaled(pre.factor)))
        yield name, items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real-dir", type=Path, default=None, help="labelled real sets (none by default)")
    ap.add_argument("--aspire-dir", type=Path, default=None)
    ap.add_argument("--sim-per-config", type=int, default=3, help="simulated micrographs per configuration")
    ap.add_argument("--exclude", action="append", default=[], help="leave out this set (e.g. sim:dumbbell)")
    ap.add_argument("--steps", type=int, default=2000, help="minibatches of 256 crops")
    ap.add_argument("--max-minutes", type=float, default=60.0,
                    help="scale the steps down so that training should end within this time (a timing pilot)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import attrs

    from cryopick.config import config_to_dict
    from cryopick.host import build_host
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker
    from cryopick.torchutil import seed_everything, state_dict_to_arrays
    from cryopick.weights import save_weights

    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    picker = make_picker(build_host(), "topaz", {"init": "none"}, args.device, args.seed)
    exclude = set(args.exclude)
    sets = []
    if args.real_dir is not None:
        sets += list(folder_items(args.real_dir, "real", picker, exclude))
    if args.aspire_dir is not None:
        sets += list(folder_items(args.aspire_dir, "aspire", picker, exclude))
    sets += list(simulated_items(picker, args.sim_per_config, args.seed, exclude))
    images = [im for _, items in sets for im, _ in items]
    labels = [p for _, items in sets for _, p in items]
    for name, items in sets:
        print(f"{name}: {len(items)} micrographs, {sum(len(p) for _, p in items)} particles", flush=True)
    # Complete labels: pi is the mean labelled count per micrograph (the GE term then asks the unlabelled
    # crops for almost no positives, i.e. the objective is close to PN).
    expected = float(np.mean([len(p) for p in labels]))
    print(f"{len(sets)} sets, {len(images)} micrographs, {expected:.1f} particles per micrograph on average; "
          f"ready in {time.perf_counter() - t0:.0f} s", flush=True)

    # a timing pilot, then the steps that fit --max-minutes
    picker.config = attrs.evolve(picker.config, epoch_size=5, epochs=1)
    t1 = time.perf_counter()
    picker._fit(images, labels, [], expected, 0.0, 1, rng, [], "timing pilot", prior_radius=picker.config.radius)
    per_step = (time.perf_counter() - t1) / 5
    budget = args.max_minutes * 60 * 0.9 - (time.perf_counter() - t0)
    steps = args.steps
    if per_step * steps > budget > 0:
        steps = max(250, int(budget / per_step))
        print(f"{per_step:.2f} s per step: {steps} steps fit {args.max_minutes:g} minutes", flush=True)
    epochs = max(1, round(steps / 250))
    picker.config = attrs.evolve(picker.config, epoch_size=250, epochs=epochs)
    fit = picker._fit(images, labels, [], expected, 0.0, epochs, rng, [], "pretrain",
                      prior_radius=picker.config.radius)
    model = fit["model"]

    # float16 halves the file; integers (batch-norm counters) stay as they are
    arrays = {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in state_dict_to_arrays(model).items()}
    record = {"recipe": "packages/cryopick-topaz/recipes/pretrain_init.py", "code_version": code_version(REPO),
              "sets": {name: {"micrographs": len(items), "particles": sum(len(p) for _, p in items)}
                       for name, items in sets},
              "excluded": sorted(exclude), "sim_per_config": args.sim_per_config, "steps": epochs * 250,
              "expected_particles": expected, "pi": fit["pi"], "history": fit["history"],
              "seconds": round(time.perf_counter() - t0, 1), "seed": args.seed}
    save_weights(args.out, ModelState(arrays, {"picker": "topaz", "kind": "cryopick-topaz/init",
                                               "config": config_to_dict(picker.config), "training": record}))
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.2f} MB) in {time.perf_counter() - t0:.0f} s; last epoch loss "
          f"{fit['history'][-1]['loss']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
