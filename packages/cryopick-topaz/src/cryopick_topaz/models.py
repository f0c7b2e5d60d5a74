"""Topaz classifier architectures (Bepler et al. 2019, Online Methods §6; METHODS.md), written from the
published layer lists.

Every network is a stack of *valid* (unpadded) convolutions that maps a crop of ``receptive_field`` pixels
to one logit, so it is trained on crops. For scoring, :meth:`Classifier.set_fill` turns each stride into a
dilation of the later layers (the "à trous" trick): the same weights then give one logit per pixel, where
the logit at pixel ``p`` is exactly what the strided network gives for the crop centred on ``p``. Padding
the micrograph by the receptive-field radius makes the output the size of the input. :func:`score_map`
does this tile by tile (tiles overlap by the receptive-field radius and are stitched exactly), so a
4096 x 4096 micrograph needs bounded memory.

Architectures (``u`` = ``units``; BN = batch normalisation; all activations PReLU):

* ``resnet8``  conv7 s2 (u); ResidA dil 2 (u); ResidA dil 2, s2 (-> 2u); ResidA dil 2 (2u); conv5 (4u).
  Receptive field 71, stride 4.
* ``resnet16`` conv7 s2 (u); ResidA (u); ResidA dil 2, s2 (-> 2u); 3 x ResidA (2u); conv5 (4u).
  Receptive field 91, stride 4.
* ``conv31`` / ``conv63`` / ``conv127``: kernels [7,5,5] / [7,5,5,5] / [7,5,5,5,5], each but the last with
  stride 2, units doubling per layer; receptive fields 31 / 63 / 127.

A residual block (ResidA) is conv3 -> BN -> PReLU -> conv3 (dilation d, stride s) -> BN, plus the input
centre-cropped (and projected by a 1x1 convolution when the width or stride changes), then PReLU.

Models trained with topaz-em are rebuilt from a layer list (:func:`from_spec`, written by
:mod:`cryopick_topaz.import_model`): the same blocks with topaz-em's options, which differ from the
defaults above: batch normalisation may be off (convolutions then have biases), the activation may be
ReLU or a PReLU with one shared slope, and topaz-em's residual block normalises *after* adding the
shortcut (``act(BN(conv1(h) + shortcut))``, ``norm_after_add``).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Conv(nn.Module):
    """A valid convolution that knows its stride and dilation, and can run in fill (dilated) mode."""

    def __init__(self, nin: int, nout: int, kernel: int, stride: int = 1, dilation: int = 1, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, kernel, stride=stride, dilation=dilation, bias=bias)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.jump = 1  # accumulated stride before this layer, used in fill mode
        self.fill = False

    def configure(self, jump: int, fill: bool) -> int:
        self.jump, self.fill = jump, fill
        return jump * self.stride

    def extent(self) -> int:
        """Receptive-field growth in units of the input grid: (k - 1) * dilation."""
        return (self.kernel - 1) * self.dilation

    def forward(self, x):
        if self.fill:
            return F.conv2d(x, self.conv.weight, self.conv.bias, stride=1, dilation=self.dilation * self.jump)
        return self.conv(x)


def _activation(name: str, channels: int, prelu: int | None = None) -> nn.Module:
    """``prelu``: PReLU with ``channels`` slopes (or ``prelu`` of them: 1 = one shared slope); ``relu``."""
    if name == "prelu":
        return nn.PReLU(prelu or channels)
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}; topaz blocks use prelu or relu")


class ConvBlock(nn.Module):
    """Conv -> BN -> PReLU (``bn=False``: a convolution with bias, no BN; ``activation``: prelu or relu)."""

    def __init__(self, nin, nout, kernel, stride=1, dilation=1, bn: bool = True, activation: str = "prelu",
                 prelu: int | None = None):
        super().__init__()
        self.conv = Conv(nin, nout, kernel, stride, dilation, bias=not bn)
        self.bn = nn.BatchNorm2d(nout) if bn else nn.Identity()
        self.act = _activation(activation, nout, prelu)

    def configure(self, jump, fill):
        return self.conv.configure(jump, fill)

    def receptive(self, rf, jump):
        return rf + self.conv.extent() * jump, jump * self.conv.stride

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class ResidA(nn.Module):
    """Residual block with valid convolutions; the shortcut is the centre crop of the input.

    ``bn=False``: convolutions with biases and no BN; ``activation``: prelu or relu (``prelu0``/``prelu``:
    slopes of the two PReLUs, default one per channel); ``norm_after_add``: topaz-em's order,
    ``act(BN(conv1(h) + shortcut))`` instead of ``act(BN(conv1(h)) + shortcut)``.
    """

    def __init__(self, nin, nhidden, nout, dilation=1, stride=1, bn: bool = True, activation: str = "prelu",
                 prelu0: int | None = None, prelu: int | None = None, norm_after_add: bool = False):
        super().__init__()
        self.conv0 = Conv(nin, nhidden, 3, bias=not bn)
        self.bn0 = nn.BatchNorm2d(nhidden) if bn else nn.Identity()
        self.act0 = _activation(activation, nhidden, prelu0)
        self.conv1 = Conv(nhidden, nout, 3, stride=stride, dilation=dilation, bias=not bn)
        self.bn1 = nn.BatchNorm2d(nout) if bn else nn.Identity()
        self.project = Conv(nin, nout, 1, bias=False) if (nin != nout) else None
        self.act = _activation(activation, nout, prelu)
        self.norm_after_add = norm_after_add
        self.offset = 1 + dilation  # centre of the branch's footprint, in input pixels
        self.stride = stride
        self.jump, self.fill = 1, False

    def configure(self, jump, fill):
        self.jump, self.fill = jump, fill
        j = self.conv0.configure(jump, fill)
        out = self.conv1.configure(j, fill)
        if self.project is not None:
            self.project.configure(jump, fill)
        return out

    def receptive(self, rf, jump):
        rf = rf + self.conv0.extent() * jump + self.conv1.extent() * jump
        return rf, jump * self.stride

    def forward(self, x):
        y = self.conv1(self.act0(self.bn0(self.conv0(x))))
        if not self.norm_after_add:
            y = self.bn1(y)
        h, w = y.shape[-2:]
        if self.fill:
            o = self.offset * self.jump
            s = x[:, :, o: o + h, o: o + w]
        else:
            o, st = self.offset, self.stride
            s = x[:, :, o: o + st * (h - 1) + 1: st, o: o + st * (w - 1) + 1: st]
        if self.project is not None:
            s = self.project(s)
        return self.act(self.bn1(y + s) if self.norm_after_add else y + s)


class Classifier(nn.Module):
    """Feature layers plus a linear (1x1) classifier: a crop of ``receptive_field`` pixels -> one logit.

    ``latent_dim`` is the width of the features (input of the classifier and of the optional decoder).
    """

    def __init__(self, layers: list[nn.Module], latent_dim: int, name: str = ""):
        super().__init__()
        self.features = nn.ModuleList(layers)
        self.classifier = nn.Conv2d(latent_dim, 1, 1)
        self.latent_dim = latent_dim
        self.name = name
        rf, jump = 1, 1
        for layer in self.features:
            rf, jump = layer.receptive(rf, jump)
        self.receptive_field = rf
        self.stride = jump
        self._fill = False

    @property
    def radius(self) -> int:
        return (self.receptive_field - 1) // 2

    def set_fill(self, fill: bool) -> None:
        """Fill mode: strides become dilations so the output has one logit per input position."""
        jump = 1
        for layer in self.features:
            jump = layer.configure(jump, fill)
        self._fill = fill

    def extract(self, x):
        for layer in self.features:
            x = layer(x)
        return x

    def forward(self, x):
        return self.classifier(self.extract(x))


def resnet8(units: int = 32, **_) -> Classifier:
    u = units
    layers = [ConvBlock(1, u, 7, stride=2),
              ResidA(u, u, u, dilation=2),
              ResidA(u, u, 2 * u, dilation=2, stride=2),
              ResidA(2 * u, 2 * u, 2 * u, dilation=2),
              ConvBlock(2 * u, 4 * u, 5)]
    return Classifier(layers, 4 * u, "resnet8")


def resnet16(units: int = 32, **_) -> Classifier:
    u = units
    layers = [ConvBlock(1, u, 7, stride=2),
              ResidA(u, u, u, dilation=1),
              ResidA(u, u, 2 * u, dilation=2, stride=2),
              ResidA(2 * u, 2 * u, 2 * u, dilation=1),
              ResidA(2 * u, 2 * u, 2 * u, dilation=1),
              ResidA(2 * u, 2 * u, 2 * u, dilation=1),
              ConvBlock(2 * u, 4 * u, 5)]
    return Classifier(layers, 4 * u, "resnet16")


def _convnet(kernels: list[int], units: int, name: str) -> Classifier:
    layers, nin = [], 1
    for i, k in enumerate(kernels):
        nout = units * 2 ** i
        layers.append(ConvBlock(nin, nout, k, stride=2 if i < len(kernels) - 1 else 1))
        nin = nout
    return Classifier(layers, nin, name)


def conv31(units: int = 32, **_) -> Classifier:
    return _convnet([7, 5, 5], units, "conv31")


def conv63(units: int = 32, **_) -> Classifier:
    return _convnet([7, 5, 5, 5], units, "conv63")


def conv127(units: int = 32, **_) -> Classifier:
    return _convnet([7, 5, 5, 5, 5], units, "conv127")


BACKBONES = {"resnet8": resnet8, "resnet16": resnet16, "conv31": conv31, "conv63": conv63, "conv127": conv127}


def build_backbone(name: str, units: int = 32) -> Classifier:
    try:
        return BACKBONES[name](units=units)
    except KeyError:
        raise ValueError(f"unknown topaz backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def from_spec(spec: dict) -> Classifier:
    """Rebuild a network from a layer list (what :mod:`cryopick_topaz.import_model` stores with an imported
    topaz-em model): ``{"layers": [{"kind": "conv" | "resid", ...keywords of ConvBlock / ResidA}],
    "latent_dim": int, "name": str}``."""
    kinds = {"conv": ConvBlock, "resid": ResidA}
    layers = []
    for layer in spec["layers"]:
        args = dict(layer)
        kind = args.pop("kind")
        if kind not in kinds:
            raise ValueError(f"unknown layer kind {kind!r} in a model's layer list")
        layers.append(kinds[kind](**args))
    return Classifier(layers, int(spec["latent_dim"]), spec.get("name", ""))


class Decoder(nn.Module):
    """Autoencoder decoder (Online Methods §6, DCGAN-like): the 1x1 feature vector of a crop -> transposed
    conv4 128 -> conv4 s2 64 -> conv4 s2 32 -> conv3 s2 1 (BN + leaky ReLU between), resized to the crop."""

    def __init__(self, latent_dim: int, size: int):
        super().__init__()
        self.size = size
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 128, 4), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(128, 64, 4, stride=2), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, 32, 4, stride=2), nn.BatchNorm2d(32), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(32, 1, 3, stride=2))

    def forward(self, z):
        out = self.net(z)
        return F.interpolate(out, size=(self.size, self.size), mode="bilinear", align_corners=False)


def _fold_bn(conv: Conv, bn: nn.BatchNorm2d) -> None:
    """Fold eval-mode batch normalisation ``bn`` into the preceding convolution ``conv`` (in place)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.conv.weight * scale[:, None, None, None]
    bias = bn.bias - bn.running_mean * scale
    if conv.conv.bias is not None:
        bias = bias + conv.conv.bias * scale
    new = nn.Conv2d(conv.conv.in_channels, conv.conv.out_channels, conv.kernel, stride=conv.stride,
                    dilation=conv.dilation, bias=True)
    new.weight.data.copy_(weight)
    new.bias.data.copy_(bias)
    conv.conv = new


@torch.no_grad()
def inference_copy(model: Classifier, channels_last: bool = True) -> Classifier:
    """A copy of ``model`` for scoring: batch normalisation folded into the convolutions (eval statistics),
    channels-last memory layout (faster dilated convolutions on CPU), eval mode. Same logits up to
    float rounding."""
    fused = copy.deepcopy(model).eval()
    for m in fused.modules():
        if isinstance(m, ConvBlock) and isinstance(m.bn, nn.BatchNorm2d):
            _fold_bn(m.conv, m.bn)
            m.bn = nn.Identity()
        elif isinstance(m, ResidA) and isinstance(m.bn0, nn.BatchNorm2d):
            _fold_bn(m.conv0, m.bn0)
            m.bn0 = nn.Identity()
            if not m.norm_after_add:  # after the addition BN also scales the shortcut: not folded
                _fold_bn(m.conv1, m.bn1)
                m.bn1 = nn.Identity()
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
    fused.channels_last = channels_last  # score_map feeds tiles in the same layout
    return fused


@torch.inference_mode()
def score_map(model: Classifier, image: np.ndarray, tile: int = 512, batch: int = 4, device: str = "cpu",
              pad_mode: str = "constant", fuse: bool = True) -> np.ndarray:
    """Per-pixel logits of ``model`` on ``image`` (same shape), computed in fill mode tile by tile.

    The image is padded by the receptive-field radius (zeros: the background mean after GMM
    normalisation); each output tile of ``tile`` x ``tile`` pixels reads an input window larger by the
    radius on every side, so tiles are independent and stitch exactly. Tiles are batched ``batch`` at a
    time. With ``fuse`` the scoring runs on :func:`inference_copy` (batch normalisation folded, channels-last
    on CPU); ``model`` itself is not changed (left in its own mode, fill off). Callers that score many
    micrographs with one model pass an :func:`inference_copy` made once, with ``fuse=False``.
    """
    was_training = model.training
    net = inference_copy(model, channels_last=not str(device).startswith("cuda")) if fuse else model
    layout = torch.channels_last if getattr(net, "channels_last", False) else torch.contiguous_format
    net.eval()
    net.set_fill(True)
    try:
        img = np.asarray(image, dtype=np.float32)
        h, w = img.shape
        r = net.radius
        # Equal tiles of at most ``tile`` pixels: a 700 px side is two tiles of 350, not two of 512 (which
        # would score 1024 px, twice the pixels).
        ny, nx = math.ceil(h / tile), math.ceil(w / tile)
        th, tw = math.ceil(h / ny), math.ceil(w / nx)
        # Pad so that every tile's window exists: radius on the left/top, radius + the rest on the right.
        padded = np.pad(img, ((r, r + ny * th - h), (r, r + nx * tw - w)),
                        mode=pad_mode if pad_mode != "constant" else "constant")
        src = torch.from_numpy(padded)
        out = np.empty((ny * th, nx * tw), dtype=np.float32)
        coords = [(i * th, j * tw) for i in range(ny) for j in range(nx)]
        for k in range(0, len(coords), batch):
            chunk = coords[k: k + batch]
            x = torch.stack([src[y0: y0 + th + 2 * r, x0: x0 + tw + 2 * r] for y0, x0 in chunk])[:, None]
            logits = net(x.to(device).contiguous(memory_format=layout))[:, 0].float().cpu().numpy()
            for (y0, x0), lg in zip(chunk, logits, strict=True):
                out[y0: y0 + th, x0: x0 + tw] = lg
        return out[:h, :w]
    finally:
        net.set_fill(False)
        if net is model:
            model.train(was_training)
