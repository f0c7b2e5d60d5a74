"""Per-pixel features for the active-learning model: one feature vector per pixel of a preprocessed
micrograph, from a pretrained network or from fixed filters.

A *feature provider* is named by the ``features`` setting:

``hydra`` / ``hydra:FILE``
    the trunk of a HydraPicker model (fully convolutional, stride 1): the generic model shipped with
    cryopick-hydra (``hydra``) or a model written by ``cryopick hydra train``.
``mae`` / ``mae:FILE``
    the encoder of a CryoMAE model (shipped ``mae-cpu.h5``, or a ``cryopick mae pretrain`` file): windows of
    one particle slid over the micrograph, their mean token, interpolated to every pixel.
``topaz:ID`` / ``topaz:FILE``
    the feature layers of a topaz-em model (strides turned into dilations, one vector per pixel): a model
    brought in with ``cryopick import-model topaz FILE`` (its ID in the project) or a ``.sav`` file.
``filters``
    Gaussian, difference-of-Gaussian, ring and Hessian filters at the particle size: needs no model file.

Each provider says at which scale it wants micrographs (``diameter_px``: particle diameter in its input pixels,
or ``pixel_size_a``), what identifies it (``identity``, for cache keys) and how to rebuild it from arrays
stored with a model (``state`` / :func:`restore_provider`), so that a stored model carries its features.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from cryopick.errors import ConfigError
from cryopick.particles import Particles
from cryopick.weights import arrays_digest

#: Provider kinds, for messages and docs.
KINDS = ("hydra", "mae", "topaz", "filters")
#: Prefix of a provider's arrays inside an active model's state.
PREFIX = "features."


class FeatureProvider:
    """Base class. ``__call__(image) -> (C, H, W)`` float32 features of a preprocessed image."""

    kind = ""
    #: Particle diameter (its input pixels) the provider was made for; ``pixel_size_a`` when it wants a pixel
    #: size instead (topaz, as in the paper: about 8 Å/px).
    diameter_px: float = 16.0
    pixel_size_a: float | None = None
    #: Gaussian low-pass (fraction of the diameter) the network was trained with (CryoMAE denoises); 0: none.
    denoise: float = 0.0

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def identity(self) -> dict[str, Any]:
        """What the features depend on (cache keys): the kind and a digest of the weights."""
        return {"kind": self.kind, "spec": self.spec}

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, config)`` that :func:`restore_provider` rebuilds the provider from."""
        return {}, {"kind": self.kind, "spec": self.spec}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prior(self, image: np.ndarray, diameter_px: float) -> Particles | None:
        """Candidates ranked by the network's own particle score (for the first round, before any label),
        or None when the provider has no such score (then a blob detector is used)."""
        return None


# -- filters ------------------------------------------------------------------------------------------------

def _ring_kernel(r_in: float, r_out: float) -> np.ndarray:
    r = int(math.ceil(r_out))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    d = np.hypot(xx, yy)
    k = ((d >= r_in) & (d < r_out)).astype(np.float32)
    return k / max(k.sum(), 1.0)


class FilterFeatures(FeatureProvider):
    """Rotation-invariant filters at the particle size (no model file): smoothed intensity at three widths,
    two differences of Gaussians, the mean in a disk and two rings, local standard deviation, gradient
    magnitude and the two Hessian eigenvalues: 12 channels."""

    kind = "filters"
    diameter_px = 16.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from scipy import signal

        img = np.asarray(image, dtype=np.float32)
        d = self.diameter_px
        chans = [ndimage.gaussian_filter(img, s, mode="reflect") for s in (d / 8, d / 4, d / 2)]
        for s in (d / (2 * math.sqrt(2)), d / (4 * math.sqrt(2))):  # DoG ~ LoG of a disk of the diameter
            chans.append(ndimage.gaussian_filter(img, s, mode="reflect")
                         - ndimage.gaussian_filter(img, 1.6 * s, mode="reflect"))
        padded = np.pad(img, int(math.ceil(0.75 * d)) + 1, mode="reflect")
        crop = (slice(int(math.ceil(0.75 * d)) + 1, -int(math.ceil(0.75 * d)) - 1),) * 2
        for r_in, r_out in ((0.0, d / 4), (d / 4, d / 2), (d / 2, 0.75 * d)):
            chans.append(signal.fftconvolve(padded, _ring_kernel(r_in, r_out), mode="same")[crop])
        mean = ndimage.uniform_filter(img, int(d / 2) | 1, mode="reflect")
        sq = ndimage.uniform_filter(img * img, int(d / 2) | 1, mode="reflect")
        chans.append(np.sqrt(np.maximum(sq - mean * mean, 0.0)))
        chans.append(ndimage.gaussian_gradient_magnitude(img, d / 8, mode="reflect"))
        s = d / 4
        hxx = ndimage.gaussian_filter(img, s, order=(0, 2), mode="reflect")
        hyy = ndimage.gaussian_filter(img, s, order=(2, 0), mode="reflect")
        hxy = ndimage.gaussian_filter(img, s, order=(1, 1), mode="reflect")
        root = np.sqrt(((hxx - hyy) / 2) ** 2 + hxy ** 2)
        chans += [(hxx + hyy) / 2 + root, (hxx + hyy) / 2 - root]
        return np.stack(chans).astype(np.float32)


# -- torch helpers ------------------------------------------------------------------------------------------

def _tiles(h: int, w: int, tile: int):
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            yield y0, x0, min(tile, h - y0), min(tile, w - x0)


class HydraFeatures(FeatureProvider):
    """The trunk of a HydraPicker model: C channels per pixel (stride 1). Its GroupNorm normalises over
    the window it sees, so micrographs are processed in fixed tiles (``tile`` px plus ``margin`` of context,
    zeros outside the micrograph) whatever their size, which makes features independent of the size."""

    kind = "hydra"

    def __init__(self, spec: str, arrays: dict[str, np.ndarray], config: dict, device: str = "cpu",
                 tile: int = 256, margin: int = 32) -> None:
        from cryopick_hydra.model import net_from_state

        super().__init__(spec)
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()
                       if k.startswith("trunk.") or k.startswith("heads.generic.")}
        self.config = {"architecture": dict(config["architecture"]),
                       "target_diameter_px": float(config.get("target_diameter_px", 22.0)),
                       "threshold": config.get("threshold")}
        heads = ["generic"] if any(k.startswith("heads.generic.") for k in self.arrays) else []
        self.net = net_from_state(self.arrays, self.config["architecture"], heads or ["generic"]).eval().to(device)
        self.has_head = bool(heads)
        self.device, self.tile, self.margin = device, int(tile), int(margin)
        self.diameter_px = self.config["target_diameter_px"]
        self._digest = arrays_digest(self.arrays)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": self._digest, "tile": self.tile, "margin": self.margin}

    def state(self):
        return dict(self.arrays), {"kind": self.kind, "spec": self.spec, **self.config}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        h, w = img.shape
        m, t = self.margin, self.tile
        padded = F.pad(img, (m, m + t, m, m + t))
        out = np.empty((self.net.trunk.channels, h, w), dtype=np.float32)
        with torch.inference_mode():
            for y0, x0, th, tw in _tiles(h, w, t):
                window = padded[y0: y0 + t + 2 * m, x0: x0 + t + 2 * m]
                f = self.net.trunk(window[None, None].to(self.device))[0]
                out[:, y0: y0 + th, x0: x0 + tw] = f[:, m: m + th, m: m + tw].float().cpu().numpy()
        return out

    def prior(self, image: np.ndarray, diameter_px: float) -> Particles | None:
        if not self.has_head:
            return None
        from cryopick_hydra.inference import pick_image

        return pick_image(self.net, image, "generic", diameter_px, device=self.device)


class TopazFeatures(FeatureProvider):
    """The feature layers of a topaz-em network in fill mode (strides as dilations): its latent vector at
    every pixel, computed tile by tile with the receptive-field radius of context."""

    kind = "topaz"
    pixel_size_a = 8.0  # the paper's (and topaz-em's usual) scale
    diameter_px = 20.0  # without a pixel size

    def __init__(self, spec: str, arrays: dict[str, np.ndarray], architecture: dict, device: str = "cpu",
                 tile: int = 256) -> None:
        from cryopick.torchutil import load_arrays
        from cryopick_topaz.models import from_spec, inference_copy

        super().__init__(spec)
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.architecture = dict(architecture)
        net = from_spec(self.architecture)
        load_arrays(net, self.arrays)
        self.net = inference_copy(net.eval(), channels_last=False).to(device)
        self.device, self.tile = device, int(tile)
        self._digest = arrays_digest(self.arrays)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": self._digest}

    def state(self):
        return dict(self.arrays), {"kind": self.kind, "spec": self.spec, "architecture": self.architecture}

    def _run(self, image: np.ndarray, head: bool) -> np.ndarray:
        import torch

        net = self.net
        net.set_fill(True)
        try:
            img = np.asarray(image, dtype=np.float32)
            h, w = img.shape
            r, t = net.radius, self.tile
            padded = torch.from_numpy(np.pad(img, ((r, r + t), (r, r + t))))
            out = np.empty((1 if head else net.latent_dim, h, w), dtype=np.float32)
            with torch.inference_mode():
                for y0, x0, th, tw in _tiles(h, w, t):
                    x = padded[y0: y0 + th + 2 * r, x0: x0 + tw + 2 * r][None, None].to(self.device)
                    f = net(x) if head else net.extract(x)
                    out[:, y0: y0 + th, x0: x0 + tw] = f[0].float().cpu().numpy()
            return out
        finally:
            net.set_fill(False)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self._run(image, head=False)

    def prior(self, image: np.ndarray, diameter_px: float) -> Particles | None:
        from cryopick.nms import peak_local_max

        return peak_local_max(self._run(image, head=True)[0], radius=max(1.0, diameter_px / 2))


class MAEFeatures(FeatureProvider):
    """The encoder of a CryoMAE model: a window of ``crop_factor`` diameters around every ``step``-th pixel,
    encoded without masking, its patch tokens averaged; the grid of vectors is interpolated (bilinear) to
    every pixel. The ViT has no stride to turn into dilations, hence the sliding window."""

    kind = "mae"
    crop_factor = 1.2  # CryoMAE's region, as in the mae picker

    def __init__(self, spec: str, arrays: dict[str, np.ndarray], config: dict, device: str = "cpu",
                 step_fraction: float = 0.17, batch: int = 512) -> None:
        from cryopick.picker import ModelState
        from cryopick_mae.train import model_from_state

        super().__init__(spec)
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.config = {"architecture": dict(config["architecture"]), "denoise": float(config.get("denoise", 0.1))}
        self.denoise = self.config["denoise"]
        self.model = model_from_state(ModelState(self.arrays, self.config)).to(device).eval()
        self.image_size = int(self.config["architecture"]["image_size"])
        self.diameter_px = self.image_size / self.crop_factor  # a window is then exactly the model input
        self.step = max(1, int(round(step_fraction * self.diameter_px)))
        self.device, self.batch = device, int(batch)
        self._digest = arrays_digest(self.arrays)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "weights": self._digest, "step": self.step}

    def state(self):
        return dict(self.arrays), {"kind": self.kind, "spec": self.spec, **self.config}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from cryopick_mae.windows import to_input

        size, step = self.image_size, self.step
        h, w = image.shape
        half = size // 2
        img = F.pad(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), (half, half + step, half,
                                                                                       half + step))
        views = img.unfold(0, size, step).unfold(1, size, step)  # window (i, j) centred near (j*step, i*step)
        ny, nx = -(-h // step) + 1, -(-w // step) + 1
        views = views[:ny, :nx]
        flat = views.reshape(-1, size, size)
        feats = []
        with torch.inference_mode():
            for i in range(0, flat.shape[0], self.batch):
                x = to_input(flat[i: i + self.batch], size, True, self.device)
                feats.append(self.model.features(x, "mean").float().cpu())
        grid = torch.cat(feats).reshape(views.shape[0], views.shape[1], -1).permute(2, 0, 1)
        # grid node (i, j) sits at pixel (i*step, j*step): interpolate to every pixel
        ys = torch.arange(h, dtype=torch.float32) / step
        xs = torch.arange(w, dtype=torch.float32) / step
        gy = 2 * ys / max(grid.shape[1] - 1, 1) - 1
        gx = 2 * xs / max(grid.shape[2] - 1, 1) - 1
        mesh = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
        out = F.grid_sample(grid[None], mesh, mode="bilinear", align_corners=True)[0]
        return out.numpy().astype(np.float32)


# -- construction -------------------------------------------------------------------------------------------

def _split(spec: str) -> tuple[str, str]:
    kind, _, arg = str(spec).partition(":")
    return kind.strip().lower(), arg.strip()


def make_provider(spec: str, device: str = "cpu", resolve_model: Callable[[str], Any] | None = None,
                  tile: int = 256) -> FeatureProvider:
    """The provider named by ``spec`` (see the module docstring). ``resolve_model(id)`` returns a stored
    model's :class:`~cryopick.picker.ModelState` (or None) for ``topaz:ID``."""
    from cryopick.weights import load_weights

    kind, arg = _split(spec)
    if kind == "filters":
        if arg:
            raise ConfigError(f"features={spec}: filters takes no argument")
        return FilterFeatures("filters")
    if kind == "hydra":
        try:
            from cryopick_hydra.picker import BUILTIN, MODEL_KIND, builtin_model
        except ImportError as exc:
            raise ConfigError(f"features={spec} needs cryopick-hydra: pip install cryopick-hydra ({exc})") from None
        path = Path(arg) if arg and arg != BUILTIN else None
        if path is None:
            try:
                path = builtin_model()
            except ConfigError:
                raise ConfigError(
                    "features=hydra: no generic HydraPicker model is installed with cryopick-hydra yet; use "
                    "--set features=mae (the shipped MAE encoder), --set features=filters (no model), "
                    "features=hydra:FILE with a model from 'cryopick hydra train', or features=topaz:ID") from None
        state = load_weights(path)
        if state.config.get("kind") != MODEL_KIND:
            raise ConfigError(f"features={spec}: {path} is not a HydraPicker model (write one with "
                              "'cryopick hydra train')")
        config = dict(state.config)
        config.setdefault("target_diameter_px", (config.get("record", {}).get("picker") or {})
                          .get("target_diameter_px", 22.0))
        return HydraFeatures(spec, state.arrays, config, device, tile=tile)
    if kind == "mae":
        try:
            from cryopick_mae.picker import BUILTIN, builtin_weights
        except ImportError as exc:
            raise ConfigError(f"features={spec} needs cryopick-mae: pip install cryopick-mae ({exc})") from None
        path = Path(arg) if arg and arg != BUILTIN else builtin_weights()
        state = load_weights(path)
        if "architecture" not in state.config:
            raise ConfigError(f"features={spec}: {path} is not a cryopick-mae weights file")
        return MAEFeatures(spec, state.arrays, state.config, device)
    if kind == "topaz":
        try:
            from cryopick_topaz.import_model import read_topaz_model
        except ImportError as exc:
            raise ConfigError(f"features={spec} needs cryopick-topaz: pip install cryopick-topaz ({exc})") from None
        if not arg:
            raise ConfigError("features=topaz needs a model: topaz:ID (cryopick import-model topaz FILE), "
                              "topaz:FILE.sav or topaz:topaz-em (the installed topaz-em's resnet16_u64)")
        if arg == "topaz-em":  # the paper's features: topaz-em's pretrained ResNet16, 64 units, the user's copy
            from cryopick.errors import InputError
            from cryopick_topaz.import_model import find_topaz_em_detector

            try:
                arg = str(find_topaz_em_detector("resnet16", 64))
            except InputError as exc:
                raise ConfigError(f"features={spec}: {exc}") from None
        if Path(arg).is_file():
            architecture, arrays = read_topaz_model(arg)
            return TopazFeatures(spec, arrays, architecture, device, tile=tile)
        state = resolve_model(arg) if resolve_model is not None else None
        if state is None:
            where = "this project" if resolve_model is not None else "here (no project at hand)"
            raise ConfigError(f"features={spec}: {arg!r} is neither a file nor a model imported into {where}; "
                              "bring a topaz-em model in with 'cryopick import-model -P PROJECT topaz FILE.sav' "
                              "and pass the ID it prints, or give the .sav file")
        if "architecture" not in state.config:
            raise ConfigError(f"features={spec}: model {arg} is not an imported topaz-em network (it has no layer "
                              "list); only models from 'cryopick import-model topaz' carry one")
        return TopazFeatures(spec, state.arrays, state.config["architecture"], device, tile=tile)
    raise ConfigError(f"features={spec}: unknown feature provider {kind!r}; use one of hydra[:FILE], mae[:FILE], "
                      "topaz:ID|FILE, filters")


def restore_provider(arrays: dict[str, np.ndarray], config: dict, device: str = "cpu",
                     tile: int = 256) -> FeatureProvider:
    """Rebuild a provider from what :meth:`FeatureProvider.state` returned (stored with an active model)."""
    kind = config.get("kind")
    spec = config.get("spec", kind)
    if kind == "filters":
        return FilterFeatures(spec)
    if kind == "hydra":
        return HydraFeatures(spec, arrays, config, device, tile=tile)
    if kind == "topaz":
        return TopazFeatures(spec, arrays, config["architecture"], device, tile=tile)
    if kind == "mae":
        return MAEFeatures(spec, arrays, config, device)
    raise ConfigError(f"an active model with features of unknown kind {kind!r}")
