"""How hard is the simulator compared with real micrographs? DoG's AP and image statistics, real vs simulated.

For each real set in ``../shared/data/real/<set>/`` (``mrc/*.mrc``, ``labels.star``, ``meta.json`` with
``diameter_px``) and for simulated analogues of it (same size, diameter and particle count), this prints:

- **DoG AP / best F1**: :class:`cryopick.pickers.dog.DoGPicker` at its defaults, driven in-process (its own
  preprocessing chain: Fourier-crop to 16 px particles, robust normalisation), all candidates ranked, box IoU >=
  0.5 (:func:`cryopick.metrics.evaluate`), over all micrographs (DoG has no training).
- **SNR (pixel)**: the simulator's definition measured from the image: after removing the ice/gradient (Gaussian
  high-pass at ``2 D``), ``(var(particle disks) - var(background)) / var(background)``; background = pixels more
  than ``0.6 D`` from every labelled centre. On real data unlabelled particles in the "background" bias it low.
- **SNR (band)**: the same after a low-pass at ``D / 10`` too: SNR in the band a particle lives in (what a
  picker working at ~16 px per particle sees, and what coloured real noise does not inflate).
- **contrast d'**: the image smoothed at ``D / 4`` (after the ``2 D`` high-pass), sampled at the labelled
  centres vs at background points: ``(mean_bg - mean_centres) / sd_bg`` (positive: particles darker).
- **rings**: Thon-ring visibility: standard deviation of the residual of the log radial power spectrum (mean
  periodogram of 256² Hann-windowed tiles) from its running median, between ``2 / D`` and 0.45 cycles/px.
- **HF/band**: radial power at 0.3-0.45 cycles/px over power at ``1/D``-``3/D``: how much of the image's
  variance is fine noise above the particle band (white noise: high; binned real data: low).
- **packing**: labelled area fraction ``N pi (D/2)^2 / area``.
- **gradient**: standard deviation at scales above ``2 D`` (Gaussian ``2 D``) over that of the particle band.
- **outliers**: area fraction where the image smoothed at ``D / 2`` (gradient removed at ``4 D``) is more than
  4 robust standard deviations from its median: contaminants, carbon, beads, aggregates.

Usage (one process, cheap; no network training)::

    nice -n 15 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibrate_simulator.py
    .venv/bin/python benchmarks/calibrate_simulator.py --sets ribosome --configs before,after --json-out cal.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REAL = REPO.parent / "shared" / "data" / "real"

#: Short name -> (real set folder, simulated analogue in cryopick.simulate.suite.ANALOGUES).
REAL_SETS = {
    "ribosome": "empiar-10028-ribosome",
    "trpv1": "empiar-10059-trpv1",
    "apoferritin": "empiar-10146-apoferritin",
}


# --------------------------------------------------------------------------------------------- data


def load_real(folder: Path):
    """``(images {name: float32}, truth {name: Particles}, diameter_px)`` of one real set."""
    import mrcfile
    import starfile

    from cryopick.particles import Particles

    meta = json.loads((folder / "meta.json").read_text())
    table = starfile.read(folder / "labels.star")
    if isinstance(table, dict):
        table = next(iter(table.values()))
    images, truth = {}, {}
    for path in sorted((folder / "mrc").glob("*.mrc")):
        images[path.name] = mrcfile.read(path).astype(np.float32)
        rows = table[table["rlnMicrographName"].astype(str).map(lambda s: Path(s).name) == path.name]
        truth[path.name] = Particles(rows["rlnCoordinateX"].to_numpy(float), rows["rlnCoordinateY"].to_numpy(float))
    return images, truth, float(meta["diameter_px"])


def simulate(config):
    """Simulated images and truth of ``config`` (in memory, nothing written)."""
    from cryopick.simulate import simulate_micrograph

    images, truth = {}, {}
    for i in range(config.n_micrographs):
        mic = simulate_micrograph(config, i)
        images[mic.name] = mic.image
        truth[mic.name] = mic.truth
    return images, truth, float(config.diameter_px)


# --------------------------------------------------------------------------------------------- DoG


def dog_scores(images: dict, truth: dict, diameter: float) -> dict:
    """DoG at its defaults, in-process: AP and best F1 over all candidates, IoU >= 0.5."""
    from cryopick.metrics import evaluate
    from cryopick.pickers.dog import DoGConfig, DoGPicker
    from cryopick.preprocess import Downsample, Normalize, apply_chain

    picker = DoGPicker(DoGConfig())
    build = {"downsample": Downsample, "normalize": Normalize}
    steps = [build[name](**params) for name, params in picker.preprocessing(diameter, None)]
    cands = {}
    for name, image in images.items():
        pre = apply_chain(image, steps)
        fx, fy = pre.factor
        c = picker.score(pre.image, diameter / ((fx + fy) / 2))
        cands[name] = c.scaled((1 / fx, 1 / fy))
    ev = evaluate(cands, truth, diameter_px=diameter, candidates=cands)
    return {"dog_ap": ev.average_precision, "dog_best_f1": ev.best_f1,
            "dog_candidates_per_truth": ev.n_picks / max(ev.n_truth, 1)}


# --------------------------------------------------------------------------------------------- statistics


def _robust(x: np.ndarray) -> tuple[float, float]:
    med = float(np.median(x))
    return med, float(np.median(np.abs(x - med)) * 1.4826) or 1.0


def _distance_to_truth(shape, particles) -> np.ndarray:
    """Distance (px) from each pixel to the nearest labelled centre."""
    seeds = np.ones(shape, dtype=bool)
    xs = np.clip(np.round(particles.x).astype(int), 0, shape[1] - 1)
    ys = np.clip(np.round(particles.y).astype(int), 0, shape[0] - 1)
    seeds[ys, xs] = False
    if seeds.all():
        return np.full(shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(seeds).astype(np.float32)


def radial_psd(image: np.ndarray, tile: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(frequency in cycles/px, mean radial power)`` from Hann-windowed tiles (non-overlapping)."""
    rows, cols = image.shape
    win = np.outer(np.hanning(tile), np.hanning(tile)).astype(np.float32)
    acc = np.zeros((tile, tile), np.float64)
    n = 0
    for r in range(0, rows - tile + 1, tile):
        for c in range(0, cols - tile + 1, tile):
            t = image[r:r + tile, c:c + tile]
            t = (t - t.mean()) * win
            acc += np.abs(np.fft.fft2(t)) ** 2
            n += 1
    acc /= max(n, 1)
    f = np.fft.fftfreq(tile)
    k = np.hypot(f[:, None], f[None, :])
    bins = np.round(k * tile).astype(int)
    power = np.bincount(bins.ravel(), acc.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    freq = np.arange(power.size) / tile
    keep = freq <= 0.5
    return freq[keep], power[keep]


def image_stats(image: np.ndarray, particles, diameter: float) -> dict:
    """Difficulty statistics of one micrograph (see the module docstring)."""
    img = image.astype(np.float32)
    mean_, sd_ = _robust(img)
    img = (img - mean_) / sd_
    d = diameter
    border = int(d)
    inner = np.zeros(img.shape, bool)
    inner[border:-border, border:-border] = True
    out = {}
    # Outliers (contaminants, carbon, beads, aggregates): large dark or bright regions at the particle scale.
    blob = ndimage.gaussian_filter(img - ndimage.gaussian_filter(img, 4 * d), d / 2)
    m, s = _robust(blob[inner])
    outlier = np.abs(blob - m) > 4 * s
    out["outliers"] = float(np.mean(outlier[inner]))
    clean = inner & ~ndimage.binary_dilation(outlier, iterations=int(d / 2) + 1)
    large = ndimage.gaussian_filter(img, 2 * d)
    hp = img - large
    dist = _distance_to_truth(img.shape, particles)
    disk = (dist <= d / 2) & clean
    bg = (dist > 0.6 * d) & clean
    band_img = ndimage.gaussian_filter(hp, d / 10)
    for key, x in (("snr_pixel", hp), ("snr_band", band_img)):
        if disk.sum() > 10 and bg.sum() > 10:
            vb = float(x[bg].var())
            out[key] = (float(x[disk].var()) - vb) / vb
        else:
            out[key] = float("nan")
    smooth = ndimage.gaussian_filter(hp, d / 4)
    xs = np.round(particles.x).astype(int)
    ys = np.round(particles.y).astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    ok[ok] = clean[ys[ok], xs[ok]]
    centres = smooth[ys[ok], xs[ok]]
    bgvals = smooth[bg][:: max(1, int(bg.sum() // 20000))]
    out["contrast"] = (float(bgvals.mean() - centres.mean()) / float(bgvals.std() + 1e-12)
                       if centres.size and bgvals.size > 10 else float("nan"))
    freq, power = radial_psd(img)
    logp = np.log(power + 1e-30)
    lo = max(2.0 / d, 0.02)
    sel = (freq >= lo) & (freq <= 0.45)
    smooth_logp = ndimage.median_filter(logp, size=9, mode="nearest")
    out["rings"] = float(np.std((logp - smooth_logp)[sel])) if sel.sum() > 5 else float("nan")
    hf = power[(freq >= 0.3) & (freq <= 0.45)].mean()
    band = power[(freq >= 1.0 / d) & (freq <= 3.0 / d)].mean()
    out["hf_band"] = float(hf / band)
    out["packing"] = float(len(particles) * np.pi * (d / 2) ** 2 / img.size)
    out["gradient"] = float(large[clean].std() / (band_img[clean].std() + 1e-12))
    return out


def dataset_stats(images: dict, truth: dict, diameter: float) -> dict:
    """DoG scores plus the per-micrograph statistics averaged over micrographs."""
    rows = [image_stats(images[n], truth[n], diameter) for n in images]
    out = dog_scores(images, truth, diameter)
    for key in rows[0]:
        out[key] = float(np.nanmean([r[key] for r in rows]))
    out["n_micrographs"] = len(images)
    out["particles_per_micrograph"] = float(np.mean([len(truth[n]) for n in images]))
    return out


# --------------------------------------------------------------------------------------------- configs


def sim_configs(which: str, real: str, shape, diameter: float, n_per_mic: int, n_mics: int):
    """Simulated analogue of real set ``real`` at the real diameter, size and count.

    ``before``: the simulator's defaults before calibration (SNR 0.1, defocus 1-2.5 um, B 80, 4 A/px, the old
    nuisance strengths) with the suite species closest to the real one. ``after``: the calibrated analogue
    :data:`cryopick.simulate.suite.ANALOGUES` (``default``: ``SimulationConfig()`` itself).
    """
    from cryopick.simulate import SimulationConfig

    if which == "before":
        species = {"ribosome": "asymmetric", "trpv1": "globular", "apoferritin": "globular",
                   "default": "globular"}[real]
        base = SimulationConfig(**_before())
        if real == "default":
            return base.evolve(n_micrographs=n_mics)
        return base.evolve(species=species, shape=shape, diameter_px=diameter, particles_per_micrograph=n_per_mic,
                           n_micrographs=n_mics)
    from cryopick.simulate.suite import analogue_config

    if real == "default":
        return SimulationConfig().evolve(n_micrographs=n_mics)
    return analogue_config(real).evolve(shape=shape, diameter_px=diameter, particles_per_micrograph=n_per_mic,
                                        n_micrographs=n_mics)


#: ``SimulationConfig`` values before calibration (commit 875e7b7): what ``before`` rows simulate.
def _before() -> dict:
    from cryopick.simulate.config import PRE_CALIBRATION

    return dict(PRE_CALIBRATION, shape=(1024, 1024), n_micrographs=4, particles_per_micrograph=60,
                species="globular", pixel_size_a=4.0, diameter_px=40.0, snr=0.1, astigmatism_um=0.05, b_factor=80.0,
                nuisances=True)


# --------------------------------------------------------------------------------------------- table

COLUMNS = [("dog_ap", "DoG AP", 3), ("dog_best_f1", "DoG best F1", 3), ("snr_pixel", "SNR pixel", 3),
           ("snr_band", "SNR band", 2), ("contrast", "contrast d'", 2), ("rings", "rings", 3),
           ("hf_band", "HF/band", 3), ("packing", "packing", 2), ("gradient", "gradient", 2),
           ("outliers", "outliers", 4)]


def table(rows: list[dict]) -> str:
    head = "| set | data | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for r in rows:
        vals = " | ".join(f"{r[k]:.{p}f}" if r.get(k) is not None and np.isfinite(r[k]) else "" for k, _, p in COLUMNS)
        lines.append(f"| {r['set']} | {r['data']} | {vals} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--real-dir", type=Path, default=DEFAULT_REAL)
    p.add_argument("--sets", default="ribosome,trpv1,apoferritin,default",
                   help="comma-separated: ribosome, trpv1, apoferritin, default (the plain SimulationConfig())")
    p.add_argument("--configs", default="before,after", help="simulated rows: before, after or both")
    p.add_argument("--n-sim", type=int, default=4, help="simulated micrographs per row")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    rows = []
    for name in [s for s in args.sets.split(",") if s]:
        if name == "default":
            shape, diameter, n_per = (1024, 1024), 40.0, 60
        else:
            folder = args.real_dir / REAL_SETS[name]
            if not folder.is_dir():
                print(f"{folder} missing: {name} skipped", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            images, truth, diameter = load_real(folder)
            stats = dataset_stats(images, truth, diameter)
            first = next(iter(images.values()))
            shape = first.shape
            n_per = int(round(stats["particles_per_micrograph"]))
            rows.append({"set": name, "data": f"real {REAL_SETS[name]}", **stats})
            print(table(rows[-1:]).splitlines()[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
            del images
        for which in configs:
            t0 = time.perf_counter()
            cfg = sim_configs(which, name, shape, diameter, n_per, args.n_sim)
            images, truth, d = simulate(cfg)
            stats = dataset_stats(images, truth, d)
            label = (f"sim {which}: {cfg.species}, SNR {cfg.snr:g}, df {cfg.defocus_um[0]:g}-{cfg.defocus_um[1]:g}, "
                     f"{cfg.pixel_size_a:g} A/px")
            rows.append({"set": name, "data": label, "config": cfg.to_dict(), **stats})
            print(table(rows[-1:]).splitlines()[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(table(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
