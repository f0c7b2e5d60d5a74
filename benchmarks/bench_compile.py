"""Seconds per training minibatch of cryopick-topaz's network, eager against compiled (``compile=on``:
torch.compile + channels-last, cryopick.torchutil.CompiledStep), in float32 and under bfloat16 autocast
(``precision=bfloat16``, cryopick.torchutil.autocast, as topaz trains), on this machine's CPU threads.

Prints one line per mode and precision; a compiled line also gives the one-off compile time. Numbers, not a
test: the accuracy side (same network to float rounding) is tests/topaz/test_training.py, and the paired AP
of float32 and bfloat16 training is benchmarks/topaz_average_probe.py ``--set precision=...``.

    python benchmarks/bench_compile.py                       # resnet8, 32 units, 256 crops (the defaults)
    python benchmarks/bench_compile.py --threads 2 --steps 10 --precision float32
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    import torch

    from cryopick.torchutil import CompiledStep, autocast, channels_last
    from cryopick_topaz.models import resnet8, resnet16
    from cryopick_topaz.picker import _train_forward

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", choices=("resnet8", "resnet16"), default="resnet8")
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--minibatch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=("float32", "bfloat16", "both"), default="both",
                    help="bfloat16 is fast only where the CPU computes it in hardware (AVX512-BF16, AMX)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    build = {"resnet8": resnet8, "resnet16": resnet16}[args.backbone]
    rf = build(args.units).receptive_field
    x = torch.randn(args.minibatch, 1, rf, rf, generator=torch.Generator().manual_seed(0))
    print(f"{args.backbone} u{args.units}, {args.minibatch} crops of {rf}px, {args.threads} thread(s)")
    precisions = ("float32", "bfloat16") if args.precision == "both" else (args.precision,)
    for mode, precision in ((m, p) for p in precisions for m in ("eager", "compiled")):
        torch.manual_seed(0)
        model = build(args.units)
        step = CompiledStep(_train_forward, enabled=mode == "compiled", label="bench")
        xb = x
        if step.enabled:
            model, xb = channels_last(model), channels_last(x)
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)

        def one(step=step, model=model, xb=xb, opt=opt, precision=precision):
            with autocast("cpu", precision):
                _, logits = step(model, xb)
            loss = torch.nn.functional.softplus(-logits.float()).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t0 = time.perf_counter()
        one()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            one()
        per = (time.perf_counter() - t0) / args.steps
        extra = f" (first minibatch {first:.1f} s: compiling)" if mode == "compiled" else ""
        print(f"{mode:9} {precision:9} {per:.3f} s per minibatch{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
