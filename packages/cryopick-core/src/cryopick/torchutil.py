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
