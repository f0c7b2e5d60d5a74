"""Recipe of the pre-trained MAE that cryopick-mae ships (``cryopick_mae/pretrained/``).

CryoMAE pre-trains its masked autoencoder on other data sets before the 15-exemplar fine-tuning (§4.1.5:
seven EMPIAR sets, 10 random regions per micrograph, 100 epochs). This script does the same for the ``cpu``
architecture from three kinds of micrographs, each preprocessed exactly as ``cryopick run --picker mae``
preprocesses them (the picker's own chain, at each set's particle diameter), so that a region is always
``crop_factor`` particle diameters across whatever the pixel size:

- the real sets in ``shared/data/real`` (EMPIAR-10028, -10059, -10146; micrographs only, no labels);
- our simulator: the three calibrated analogues and every species of the suite at the calibrated defaults;
- ASPIRE's micrographs (``benchmarks/aspire_sim.py``), when ``--aspire-dir`` is given.

Labels are never read: pre-training is self-supervised. Run (2 CPU cores: about 20-40 minutes)::

    python packages/cryopick-mae/recipes/pretrain_encoder.py --aspire-dir /tmp/aspire-data \\
        --out packages/cryopick-mae/src/cryopick_mae/pretrained/mae-cpu.h5

The file records what it was trained on, the settings, the final loss and the code version (git commit).
Weights are stored as float16 arrays (HDF5, no pickle).
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
    """Sets in the ``shared/data/real`` layout: ``<root>/<set>/mrc/*.mrc`` and ``meta.json`` (diameter_px)."""
    sets = []
    for meta in sorted(root.glob("*/meta.json")):
        d = json.loads(meta.read_text())["diameter_px"]
        mrcs = sorted((meta.parent / "mrc").glob("*.mrc"))
        if mrcs:
            sets.append({"name": f"{kind}:{meta.parent.name}", "paths": mrcs, "diameter_px": float(d)})
    return sets


def simulated_images(n_per_config: int, seed: int) -> list[dict]:
    """Our simulator: the calibrated analogues of the real sets and every suite species, ``n`` micrographs each."""
    import attrs

    from cryopick.simulate.config import SimulationConfig
    from cryopick.simulate.micrograph import simulate_micrograph
    from cryopick.simulate.suite import ANALOGUES, suite_configs

    configs = {f"sim:{k}": v for k, v in ANALOGUES.items()}
    base = SimulationConfig(shape=(1024, 1024))
    configs.update({f"sim:{k}": v for k, v in suite_configs(base).items()})
    out = []
    for i, (name, cfg) in enumerate(configs.items()):
        cfg = attrs.evolve(cfg, n_micrographs=n_per_config, seed=seed + 101 * i)
        images = [simulate_micrograph(cfg, j).image for j in range(n_per_config)]
        out.append({"name": name, "images": images, "diameter_px": float(cfg.diameter_px),
                    "pixel_size_a": float(cfg.pixel_size_a)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real-dir", type=Path, default=REPO.parent / "shared" / "data" / "real")
    ap.add_argument("--aspire-dir", type=Path, default=None)
    ap.add_argument("--sim-per-config", type=int, default=3, help="simulated micrographs per configuration")
    ap.add_argument("--regions-per-micrograph", type=int, default=200)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a picker setting on top of --preset, e.g. embed_dim=192 (repeatable; model size ablations)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    from cryopick.host import build_host
    from cryopick.io.micrographs import read_micrograph
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker
    from cryopick.stages.preprocess import preprocess_image
    from cryopick.torchutil import seed_everything
    from cryopick.weights import save_weights
    from cryopick_mae.model import count_parameters
    from cryopick_mae.train import model_arrays, pretrain, region_epochs, sample_regions

    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    # no pre-trained checkpoint: this script makes it
    settings = dict(item.split("=", 1) for item in args.set)
    picker = make_picker(build_host(), "mae", {"preset": args.preset, **settings, "checkpoint": "none"}, "cpu",
                         args.seed)
    cfg = picker.config

    sources = folder_sets(args.real_dir, "real") if args.real_dir.is_dir() else []
    if args.aspire_dir is not None:
        sources += folder_sets(args.aspire_dir, "aspire")
    t0 = time.perf_counter()
    regions, record = [], []

    def add(name: str, image: np.ndarray, d: float, size: float | None):
        pre = preprocess_image(picker, np.asarray(image, dtype=np.float32), d, size)
        window = picker.window_px(d / pre.factor[0])
        regions.append(sample_regions([pre.image], args.regions_per_micrograph, window, rng))
        return window

    for s in sources:
        for p in s["paths"]:
            image, info = read_micrograph(p)
            window = add(s["name"], image, s["diameter_px"], info.pixel_size_a)
        record.append({"set": s["name"], "micrographs": len(s["paths"]), "diameter_px": s["diameter_px"],
                       "window_px": window})
        print(f"{s['name']}: {len(s['paths'])} micrographs, d = {s['diameter_px']:g} px", flush=True)
    for s in simulated_images(args.sim_per_config, args.seed):
        for image in s["images"]:
            window = add(s["name"], image, s["diameter_px"], s["pixel_size_a"])
        record.append({"set": s["name"], "micrographs": len(s["images"]), "diameter_px": s["diameter_px"],
                       "window_px": window})
        print(f"{s['name']}: {len(s['images'])} micrographs, d = {s['diameter_px']:g} px", flush=True)
    # windows differ by a pixel between sets; the model input is image_size either way (to_input resizes)
    size = int(picker.architecture()["image_size"])
    regions = np.concatenate([_resize(r, size) for r in regions])
    print(f"{len(regions)} regions in {time.perf_counter() - t0:.0f} s", flush=True)

    model = picker.context.load("backbone", "vit-mae")(**picker.architecture())
    losses = pretrain(model, _augmented(region_epochs(regions, args.batch, rng), rng), steps=args.steps,
                      lr=args.lr, mask_ratio=cfg.mask_ratio, window_norm=cfg.window_norm, desc="mae pre-training")
    arrays = {k: v.astype(np.float16) for k, v in model_arrays(model.cpu()).items()}
    config = {"architecture": dict(model.architecture), "kind": "cryopick-mae/pretrain",
              "preset": args.preset, "settings": settings, "trained_on": record, "regions": int(len(regions)),
              "regions_per_micrograph": args.regions_per_micrograph, "steps": args.steps, "batch": args.batch,
              "lr": args.lr, "mask_ratio": cfg.mask_ratio, "crop_factor": cfg.crop_factor,
              "denoise": cfg.denoise, "seed": args.seed, "final_loss": float(np.mean(losses[-100:])),
              "parameters": count_parameters(model), "code_version": code_version(REPO),
              "seconds": round(time.perf_counter() - t0, 1),
              "recipe": "packages/cryopick-mae/recipes/pretrain_encoder.py"}
    path = save_weights(args.out, ModelState(arrays, config))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {config['parameters'] / 1e6:.2f} M parameters, "
          f"final loss {config['final_loss']:.4f}, {config['seconds']:.0f} s)")
    return 0


def _resize(regions: np.ndarray, size: int) -> np.ndarray:
    if regions.shape[-1] == size:
        return regions
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(regions)[:, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def _augmented(sample, rng: np.random.Generator):
    """Random 90-degree rotations and flips: particles have no preferred in-plane orientation."""
    def next_batch():
        x = sample()
        k = int(rng.integers(4))
        x = np.rot90(x, k, axes=(1, 2))
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        return np.ascontiguousarray(x)
    return next_batch


if __name__ == "__main__":
    sys.exit(main())
