"""Time the simulator: one 4096 x 4096 micrograph with 300 particles (target < 5 s on one core) and the demo.

Run: ``python benchmarks/bench_simulator.py``
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from cryopick.simulate import SimulationConfig, make_demo, simulate_micrograph  # noqa: E402


def main(repeats: int = 3) -> None:
    config = SimulationConfig(shape=(4096, 4096), particles_per_micrograph=300, diameter_px=40.0)
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        mic = simulate_micrograph(config, index)
        times.append(time.perf_counter() - start)
        print(f"4096x4096, {len(mic.truth)} particles, micrograph {index}: {times[-1]:.2f} s")
    print(f"best {min(times):.2f} s, mean {sum(times) / len(times):.2f} s (target < 5 s)")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_demo(tmp)
        print(f"make_demo: {time.perf_counter() - start:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
