"""Project store: does adding and picking one more micrograph cost that micrograph, whatever the project size?

Builds two projects with the same real micrograph picked by ``dog``: a small one (that micrograph only) and
a large one (~2 GB: the same plus a few hundred micrographs whose records, preprocessed images, candidates
and picks are written through the store API exactly as the pipeline writes them, with random pixels in
place of real preprocessing so that building takes a minute; half of them belong to an older run with
another preprocessing chain). Then times ``cryopick import`` + ``cryopick pick`` of one more micrograph on
each (in-process calls of the CLI entry point, median of ``--repeats`` new micrographs), and finally
``cryopick prune --keep-runs 1`` on the large one, which drops the older run and returns its space.

    python benchmarks/bench_store.py                 # ~2 GB, 2048^2 micrographs, about 2-3 minutes
    python benchmarks/bench_store.py --gb 0.3        # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np


def write_micrograph(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((size, size), dtype=np.float32)
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(image)
        m.voxel_size = 1.0


def cli(*args: str) -> float:
    from cryopick.cli.main import main

    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["-q", *args])
    if rc != 0:
        sys.exit(f"cryopick {' '.join(args)} failed ({rc})")
    return time.perf_counter() - t


def usage(project: Path) -> int:
    from cryopick.store import ProjectStore

    s = ProjectStore(project)
    try:
        return sum(s.disk_usage().values())
    finally:
        s.close()


def inflate(project: Path, target_bytes: int, seed: int) -> int:
    """Add fake micrographs to ``project`` (one real micrograph picked) until its array files hold about
    ``target_bytes``: half as the current run's preprocessed images, candidates and picks, half as an
    older run's with another chain. Returns the number of micrographs added."""
    from cryopick.particles import Particles
    from cryopick.project import Project
    from cryopick.store import ProjectStore

    store = ProjectStore(project, "a")
    proj = Project(store)
    run = proj.latest_run()
    info = proj.run_info(run)
    key = info["preprocessing"]
    base = proj.micrographs()
    (name0, mic0), = base.items()
    image0, factor = proj.preprocessed(key, name0)
    chain = store.attributes(f"/preprocessed/{key}/{name0}")["chain"]
    cands0 = proj.candidates(run)[name0]
    mic_attrs = store.attributes(f"/micrographs/{name0}")
    old_key, old_run = "0ld" + key[3:], f"dog-0ld{run[-5:]}"
    n = max(1, int(target_bytes // (2 * image0.nbytes)))
    rng = np.random.default_rng(seed)
    picks, old_picks = {}, {}
    for i in range(n):
        name = f"fake_{i:05d}"
        checksum = rng.bytes(32).hex()
        # the same three transactions per micrograph as import, preprocess and score
        store.put(f"/micrographs/{name}", **{**mic_attrs, "path": f"/data/{name}.mrc", "checksum": checksum})
        for k, r in ((key, run), (old_key, old_run)):
            image = rng.standard_normal(image0.shape, dtype=np.float32)
            proj.put_preprocessed(k, name, image, factor, chain)
            cands = Particles(cands0.x, cands0.y, rng.permutation(cands0.score))
            proj.put_candidates(r, name, cands, 0.5)
            (picks if r == run else old_picks)[name] = cands.above(np.median(cands.score))
    proj.put_picks(run, picks, {n_: 0.0 for n_ in picks}, info.get("threshold", "otsu"))
    proj.put_picks(old_run, old_picks, {n_: 0.0 for n_ in old_picks}, "otsu")
    proj.put_run_info(old_run, **{**info, "preprocessing": old_key, "updated": float(info["updated"]) - 3600})
    store.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=2.0, help="size of the large project (array files)")
    ap.add_argument("--size", type=int, default=2048, help="micrograph side in pixels")
    ap.add_argument("--diameter", default="40", help="particle diameter in pixels (dog downsamples by d/16)")
    ap.add_argument("--repeats", type=int, default=3, help="new micrographs timed per project (median)")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one, deleted at the end)")
    args = ap.parse_args()

    from cryopick import __version__

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cryopick {__version__}; {os.cpu_count()} CPUs; work folder {work}")
    try:
        mics = work / "mics"
        mics.mkdir(exist_ok=True)
        write_micrograph(mics / "base.mrc", args.size, 0)
        new = []
        for r in range(args.repeats):
            for label in ("small", "large"):
                p = mics / f"new_{label}_{r}.mrc"
                write_micrograph(p, args.size, 100 + r)  # same pixels for both projects
                new.append(p)

        projects = {}
        for label in ("small", "large"):
            project = work / label / "project.h5"
            cli("import", "-P", str(project), "--micrographs", str(mics / "base.mrc"), "--diameter", args.diameter)
            cli("pick", "-P", str(project), "--picker", "dog")
            projects[label] = project
        t = time.perf_counter()
        n_fake = inflate(projects["large"], int(args.gb * 1e9), seed=1)
        cli("pick", "-P", str(projects["large"]), "--picker", "dog")  # the picks as the threshold stage cuts them
        print(f"built the large project: {n_fake} + {n_fake} fake preprocessed images of the base micrograph's "
              f"size in {time.perf_counter() - t:.0f} s")

        times: dict[str, list[tuple[float, float, int]]] = {"small": [], "large": []}
        sizes, counts = {}, {"small": 1, "large": 1 + n_fake}
        for r in range(args.repeats):
            for label, project in projects.items():
                sizes[label] = usage(project)
                p = mics / f"new_{label}_{r}.mrc"
                t_import = cli("import", "-P", str(project), "--micrographs", str(p))
                t_pick = cli("pick", "-P", str(project), "--picker", "dog")
                times[label].append((t_import, t_pick, usage(project) - sizes[label]))
        print(f"\nadd + pick one more {args.size}x{args.size} micrograph (dog, diameter {args.diameter} px), "
              f"median of {args.repeats}:")
        print("| project | size | micrographs | import s | pick s | total s | project grew by |")
        print("|---|---|---|---|---|---|---|")
        for label in projects:
            imp = statistics.median(t[0] for t in times[label])
            pick = statistics.median(t[1] for t in times[label])
            n_mics = f"{counts[label]}-{counts[label] + args.repeats - 1}"
            grew = statistics.median(t[2] for t in times[label])
            print(f"| {label} | {sizes[label] / 1e9:.3f} GB | {n_mics} | {imp:.2f} | {pick:.2f} | {imp + pick:.2f} "
                  f"| {grew / 1e6:.1f} MB |")

        before = usage(projects["large"])
        t = time.perf_counter()
        cli("prune", "-P", str(projects["large"]), "--keep-runs", "1")
        after = usage(projects["large"])
        print(f"\nprune --keep-runs 1 on the large project: {time.perf_counter() - t:.1f} s, returned "
              f"{(before - after) / 1e9:.3f} GB ({before / 1e9:.3f} GB -> {after / 1e9:.3f} GB)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
