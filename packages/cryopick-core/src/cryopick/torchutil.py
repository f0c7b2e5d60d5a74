"""Small torch helpers shared by plugins. torch is imported inside the functions, so importing this
module is cheap and core keeps working without torch."""

from __future__ import annotations

import numpy as np

from cryopick.errors import ConfigError


def resolve_device(spec: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` are checked."""
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available here; use --device cpu or auto")
        index = spec.partition(":")[2]
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return spec
    raise ConfigError(f"--device {spec}: use auto, cpu, cuda or cuda:N")


def native_bf16_cpu(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX; Linux ``/proc/cpuinfo`` flags).
    Elsewhere bfloat16 convolutions are emulated and slower than float32, so they are not chosen."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def training_precision(setting: str, device: str) -> str:
    """The precision a training forward runs in: ``float32`` or ``bfloat16`` (autocast, float32 weights).

    ``auto``: bfloat16 on a CPU that computes it in hardware (native_bf16_cpu), float32 everywhere else (on
    CUDA it was not measured, so it is not chosen)."""
    if setting == "auto":
        return "bfloat16" if device == "cpu" and native_bf16_cpu() else "float32"
    if setting not in ("float32", "bfloat16"):
        raise ConfigError(f"precision={setting!r}: auto, float32 or bfloat16")
    return setting


def autocast(device: str, precision: str):
    """A context in which a forward runs at ``precision`` (training_precision's answer): torch's autocast
    for bfloat16 (convolutions and matrix products in bfloat16, weights, gradients and reductions in float32),
    nothing for float32."""
    import contextlib

    import torch

    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def state_dict_to_arrays(module) -> dict[str, np.ndarray]:
    """A module's parameters and buffers as numpy arrays (for the HDF5 store)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_arrays(module, arrays: dict[str, np.ndarray]) -> None:
    """Load numpy arrays saved by :func:`state_dict_to_arrays` into ``module`` (strict)."""
    import torch

    state = {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    module.load_state_dict(state, strict=True)


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


class CompiledStep:
    """A training step's forward function, compiled with ``torch.compile`` (inductor) on first use, falling
    back to eager for good when compiling fails (no C++ compiler, an unsupported op): the run goes on, as
    accurate and only slower, and says so once.

    On 1-2 CPU threads the compiled forward/backward of a small CNN takes about half the eager time (kernels
    fused, channels-last convolutions; benchmarks/bench_compile.py); compiling costs 15-60 s once per process
    (the graph is reused for new networks of the same architecture and crop shape, and cached on disk by
    torch between processes). Results agree with eager to float rounding.

    ``fn(model, x)`` must be a module-level function, so that every network of a run shares one graph.
    """

    def __init__(self, fn, enabled: bool = True, label: str = "training"):
        self.fn = fn
        self.enabled = bool(enabled)
        self.label = label
        self._compiled = None

    def __call__(self, model, x):
        from cryopick.progress import echo

        if not self.enabled:
            return self.fn(model, x)
        try:
            if self._compiled is None:
                import torch

                echo(f"{self.label}: compiling the training step (torch.compile; once per run, 15-60 s on CPU)")
                self._compiled = torch.compile(self.fn)
            return self._compiled(model, x)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back to eager
            self.enabled = False
            echo(f"{self.label}: torch.compile is not available here ({type(exc).__name__}); training eagerly, "
                 "which is as accurate and about 2x slower on CPU (--set compile=off silences this)")
            return self.fn(model, x)


def channels_last(module_or_tensor):
    """``module_or_tensor`` in channels-last memory order (faster CPU convolutions; values unchanged)."""
    import torch

    return module_or_tensor.to(memory_format=torch.channels_last)


def contiguous(module):
    """``module`` back in the default (contiguous) memory order, e.g. before its weights are stored."""
    import torch

    return module.to(memory_format=torch.contiguous_format)
