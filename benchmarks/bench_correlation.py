"""Speed of the template-correlation norm (``cryopick.recentre.correlation_norm``): each labelled centre's
standardised correlation with the template of the others, for ``n`` centres on a micrograph.

The active loop and zero-shot hydra make such a template from a micrograph's own best picks at every fit
(``self_correlation``: hundreds of centres on crowded micrographs), so its cost is paid per round while a person
waits. Prints seconds per call, and the largest difference from the direct computation (one correlation of the
whole micrograph per centre) where that is run::

    python benchmarks/bench_correlation.py                      # 1024^2, 15 / 100 / 400 centres
    python benchmarks/bench_correlation.py --size 2048 --n 200 --direct
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--diameter", type=float, default=20.0, help="particle diameter in pixels (template radius)")
    ap.add_argument("--n", default="15,100,400", help="comma-separated numbers of centres")
    ap.add_argument("--direct", action="store_true", help="also time the direct computation and compare")
    args = ap.parse_args(argv)

    from cryopick.recentre import correlation_norm, plain_leave_one_out

    rng = np.random.default_rng(0)
    image = rng.standard_normal((args.size, args.size)).astype(np.float32)
    correlation_norm(image[:64, :64], rng.uniform(0, 63, size=(2, 2)), 4.0)  # imports and FFT plans, untimed
    for n in (int(v) for v in args.n.split(",")):
        centres = rng.uniform(0, args.size - 1, size=(n, 2))
        t0 = time.perf_counter()
        _, z = correlation_norm(image, centres, args.diameter, 0.35 * args.diameter)
        line = f"{args.size}^2, {n:4d} centres: {time.perf_counter() - t0:6.2f} s"
        if args.direct:
            t0 = time.perf_counter()
            ref = plain_leave_one_out(image, centres, args.diameter, 0.35 * args.diameter)
            line += f"  (direct {time.perf_counter() - t0:6.2f} s, max |dz| {np.abs(ref - z).max():.1e})"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
