"""Micrograph sets from ASPIRE, an independent simulator, in the layout of ``shared/data/real/<set>/``.

Runs in its own venv (ASPIRE pins its own numpy/scipy; ``bash benchmarks/aspire_env.sh /tmp/aspire-venv``)::

    /tmp/aspire-venv/bin/python benchmarks/aspire_sim.py --out /tmp/aspire-data

writes, per SNR (default 0.005 and 0.01), ``<out>/aspire-snr<SNR>/`` with ``mrc/*.mrc``, ``labels.star``
(``rlnMicrographName``, ``rlnCoordinateX/Y``: particle centres in pixels, x = column, y = row, 0-based) and
``meta.json`` (``diameter_px`` and how the set was made); the harness reads them with ``--aspire-dir <out>``.

What ASPIRE does (``aspire.source.MicrographSimulation``): projections of one synthetic volume
(``aspire.volume.AsymmetricVolume``, recentred on its centre of mass) at uniformly random orientations, each
filtered by its micrograph's CTF (``RadialCTFFilter``, 300 kV, Cs 2.7 mm, 10 % amplitude contrast, defocus
uniform in [1, 2.5] um), placed at random non-overlapping centres, and white noise (``WhiteNoiseAdder.from_snr``)
with SNR = noise variance / ASPIRE's own signal power of the CTF-filtered particle images
(``Simulation.true_signal_power``, the mean energy of the ``L x L`` projection boxes).

What this generator adds before the noise: a few contaminants per micrograph (dense, irregular blobs of
1.5-4 particle diameters with the particles' contrast and several times their amplitude, e.g. ice crystals or
aggregates) placed away from the particles, and a gentle linear ice-thickness gradient. The truth is only the
particles.

Deterministic given ``--seed`` (volume, orientations, centres, CTFs, noise and contaminants all seeded; the
volume is the same in every set, the rest is drawn per set).
Every set is checked: the mean of the noise-free crops around the truth centres is a centred particle (its
centre of mass offset, in px, is printed and stored in ``meta.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mrcfile
import numpy as np


def centred_volume(L: int, seed: int, pixel_size: float, n_blobs: int):
    """ASPIRE's AsymmetricVolume, shifted so its centre of mass is the box centre (the truth coordinate)."""
    from aspire.volume import AsymmetricVolume, Volume
    from scipy import ndimage

    vol = AsymmetricVolume(L=L, C=1, K=n_blobs, seed=seed, pixel_size=pixel_size, dtype=np.float64).generate()
    a = vol.asnumpy()[0]
    com = np.array(ndimage.center_of_mass(np.clip(a, 0, None)))
    a = ndimage.shift(a, (L // 2) - com, order=3, mode="constant")
    return Volume(a.astype(np.float32)[None], pixel_size=pixel_size), a


def projected_diameter(vol, n: int = 64, frac: float = 0.9, seed: int = 0) -> float:
    """Particle diameter (px): the median over ``n`` random projections of the diameter of the centred disc
    holding ``frac`` of the projection's positive mass (what a person would call the particle's extent)."""
    from aspire.utils import Rotation

    P = vol.project(Rotation.generate_random_rotations(n, seed=seed)).asnumpy()
    L = P.shape[-1]
    g = np.indices(P.shape[1:]) - L // 2
    r = np.sqrt((g**2).sum(0)).ravel()
    order = np.argsort(r)
    out = []
    for p in P:
        c = np.cumsum(np.clip(p, 0, None).ravel()[order])
        out.append(2 * r[order][np.searchsorted(c / c[-1], frac)])
    return float(np.median(out))


def contaminants(shape, centres_rc, diameter, sign, amplitude, rng, n_range=(2, 4)):
    """A few dense irregular blobs (sums of anisotropic Gaussians) away from every particle, and an ice
    gradient. Returns (image, list of blob descriptions)."""
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    out = np.zeros(shape, np.float32)
    blobs = []
    for _ in range(int(rng.integers(n_range[0], n_range[1] + 1))):
        for _try in range(200):
            size = diameter * rng.uniform(1.5, 4.0)  # the blob's extent (diameter, px)
            cy, cx = rng.uniform(0, H), rng.uniform(0, W)
            d = np.hypot(centres_rc[:, 0] - cy, centres_rc[:, 1] - cx) if len(centres_rc) else np.array([np.inf])
            if d.min() > size / 2 + diameter:
                break
        else:
            continue
        blob = np.zeros(shape, np.float32)
        for _k in range(int(rng.integers(3, 7))):  # lumpy: a few overlapping anisotropic Gaussians
            oy, ox = rng.normal(0, size / 6, 2)
            s1, s2 = size / 4 * rng.uniform(0.5, 1.0, 2)
            th = rng.uniform(0, np.pi)
            dy, dx = yy - (cy + oy), xx - (cx + ox)
            u = np.cos(th) * dx + np.sin(th) * dy
            v = -np.sin(th) * dx + np.cos(th) * dy
            blob = np.maximum(blob, np.exp(-0.5 * ((u / s1) ** 2 + (v / s2) ** 2)))
        a = amplitude * rng.uniform(3, 8)
        out += sign * a * blob
        blobs.append({"x": round(float(cx), 1), "y": round(float(cy), 1), "size_px": round(float(size), 1),
                      "amplitude": round(float(a), 4)})
    # Ice thickness: a slow linear ramp of the background, up to one particle amplitude across the micrograph.
    gy, gx = rng.normal(0, 1, 2)
    ramp = (gy * (yy / H - 0.5) + gx * (xx / W - 0.5)) * amplitude * 0.5
    return out + ramp.astype(np.float32), blobs


def write_star(path: Path, rows: list[tuple[str, float, float]]) -> None:
    with open(path, "w") as f:
        f.write("# ASPIRE MicrographSimulation particle centres (benchmarks/aspire_sim.py)\n\n"
                "data_particles\n\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n")
        for name, x, y in rows:
            f.write(f"{name}\t{x:.6f}\t{y:.6f}\n")


def centre_check(mics: list[np.ndarray], centres: list[np.ndarray], box: int) -> dict:
    """Mean of the crops (``box`` px) around the truth centres; the centre of mass of its part with the
    particle's contrast (after removing the border mean, within box/3 of the centre) relative to the crop centre,
    in px (x = column, y = row)."""
    crops = []
    h = box // 2
    for m, c in zip(mics, centres, strict=True):
        for r, col in c.astype(int):
            if h <= r < m.shape[0] - h and h <= col < m.shape[1] - h:
                crops.append(m[r - h:r + h + 1, col - h:col + h + 1])
    mean = np.mean(crops, axis=0)
    border = np.concatenate([mean[0], mean[-1], mean[:, 0], mean[:, -1]]).mean()
    w = mean - border
    w = np.clip(w * np.sign(w[h - 3:h + 4, h - 3:h + 4].sum()), 0, None)  # the particle's contrast sign
    yy, xx = np.indices(w.shape)
    w = w * (np.hypot(yy - h, xx - h) <= box / 3)  # the particle, not the noise in the corners
    dy, dx = (w * yy).sum() / w.sum() - h, (w * xx).sum() / w.sum() - h
    return {"n_crops": len(crops), "com_offset_px": [round(float(dx), 3), round(float(dy), 3)],
            "com_offset_norm_px": round(float(np.hypot(dx, dy)), 3)}, mean


def make_set(out: Path, snr: float, args) -> dict:
    from aspire.image import Image
    from aspire.noise import WhiteNoiseAdder
    from aspire.operators import RadialCTFFilter
    from aspire.source import MicrographSimulation

    name = f"aspire-snr{snr:g}"
    d = out / name
    (d / "mrc").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([args.seed, int(round(snr * 1e6))])
    vol, _ = centred_volume(args.volume_size, args.seed, args.pixel_size, args.blobs)
    diameter = projected_diameter(vol, seed=args.seed)
    defocus = rng.uniform(args.defocus[0], args.defocus[1], args.micrographs) * 1e4  # um -> A
    ctfs = [RadialCTFFilter(voltage=300, defocus=float(df), Cs=2.7, alpha=0.1, B=0) for df in defocus]
    src = MicrographSimulation(
        vol, micrograph_size=args.size, micrograph_count=args.micrographs,
        particles_per_micrograph=args.particles, particle_amplitudes=1, ctf_filters=ctfs,
        seed=int(rng.integers(2**31)), interparticle_distance=int(np.ceil(diameter)) + 2,
    )
    power = float(src.simulation.true_signal_power())
    noise = WhiteNoiseAdder.from_snr(snr, signal_power=power, seed=int(rng.integers(2**31)))
    clean = src.clean_images[:].asnumpy()
    # The particles' contrast sign: the CTF-filtered projections' sum over the box centre.
    centres = [np.asarray(src.centers[i], dtype=float) for i in range(args.micrographs)]  # (row, col)
    sign = float(np.sign(sum(clean[i][tuple(c.astype(int).T)].sum() for i, c in enumerate(centres))) or 1.0)
    peak = float(np.mean([np.abs(clean[i][tuple(c.astype(int).T)]).mean() for i, c in enumerate(centres)]))
    rows, mics_clean, blobs_all = [], [], []
    for i in range(args.micrographs):
        cont, blobs = contaminants(clean[i].shape, centres[i], diameter, sign, peak, rng)
        img = clean[i] + cont
        noisy = noise.forward(Image(img[None].astype(np.float32)), indices=[i]).asnumpy()[0]
        fname = f"{name}_{i:03d}.mrc"
        with mrcfile.new(d / "mrc" / fname, overwrite=True) as m:
            m.set_data(noisy.astype(np.float32))
            m.voxel_size = args.pixel_size
            m.header.label[0] = f"benchmarks/aspire_sim.py seed {args.seed} snr {snr:g}".encode()  # no timestamp
        rows += [(fname, float(col), float(r)) for r, col in centres[i]]
        mics_clean.append(clean[i])
        blobs_all.append(blobs)
    write_star(d / "labels.star", rows)
    box = int(round(diameter * 1.5)) | 1
    check, mean_crop = centre_check(mics_clean, centres, box)
    # The same check on the written (noisy) files, read back as any reader would.
    noisy_mics = [mrcfile.read(d / "mrc" / r) for r in sorted({r[0] for r in rows})]
    check_noisy, _ = centre_check(noisy_mics, centres, box)
    np.save(d / "mean_crop_clean.npy", mean_crop)
    meta = {"diameter_px": round(diameter, 1), "source": f"ASPIRE MicrographSimulation (aspire {_version()})",
            "micrographs": args.micrographs, "particles": len(rows), "snr": snr, "seed": args.seed,
            "size_px": args.size, "pixel_size_A": args.pixel_size,
            "volume": {"kind": "AsymmetricVolume", "L": args.volume_size, "K": args.blobs,
                       "recentred": "centre of mass",
                       "diameter": "median over 64 projections of the disc holding 90 % of the positive mass"},
            "ctf": {"voltage_kV": 300, "Cs_mm": 2.7, "amplitude_contrast": 0.1,
                    "defocus_A": [round(float(x), 1) for x in defocus]},
            "noise": {"kind": "white", "snr": snr, "signal_power": power, "noise_var": float(noise.noise_var)},
            "contaminants": blobs_all, "particle_contrast_sign": sign,
            "coordinates": "rlnCoordinateX = column, rlnCoordinateY = row, 0-based pixel centres",
            "centre_check_clean": check, "centre_check_noisy": check_noisy,
            "command": " ".join(sys.argv)}
    (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    (d / "README.md").write_text(
        f"# {name}\n\nMade by `benchmarks/aspire_sim.py` (see its docstring): {args.micrographs} micrographs of "
        f"{args.size}^2, {args.particles} particles each, SNR {snr:g}, diameter {meta['diameter_px']} px.\n")
    return {"set": name, "diameter_px": meta["diameter_px"], "centre_check_clean": check,
            "centre_check_noisy": check_noisy, "noise_var": meta["noise"]["noise_var"]}


def _version() -> str:
    import aspire

    return aspire.__version__


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/aspire-data"))
    p.add_argument("--snr", default="0.005,0.01", help="comma-separated SNRs, one set each")
    p.add_argument("--micrographs", type=int, default=6)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--particles", type=int, default=90)
    p.add_argument("--volume-size", type=int, default=80, help="volume box L (particle images L x L)")
    p.add_argument("--blobs", type=int, default=64, help="Gaussian blobs in the AsymmetricVolume")
    p.add_argument("--pixel-size", type=float, default=2.0, help="A/px")
    p.add_argument("--defocus", type=float, nargs=2, default=(1.0, 2.5), metavar=("MIN_UM", "MAX_UM"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for snr in (float(s) for s in args.snr.split(",") if s.strip()):
        r = make_set(args.out, snr, args)
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
