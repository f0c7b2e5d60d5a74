"""``rotate``, ``hflip`` and ``vflip`` for tensors of shape ``(..., H, W)``, as torchvision documents them:
rotation counter-clockwise by ``angle`` degrees about the image centre, nearest-neighbour interpolation,
same output size, pixels from outside filled with ``fill`` (0)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def hflip(img: torch.Tensor) -> torch.Tensor:
    return img.flip(-1)


def vflip(img: torch.Tensor) -> torch.Tensor:
    return img.flip(-2)


def rotate(img: torch.Tensor, angle: float, interpolation=None, expand: bool = False, center=None,
           fill=None) -> torch.Tensor:
    if expand or center is not None:
        raise NotImplementedError("the cryopick torchvision shim rotates about the centre, same size, only")
    x = torch.as_tensor(img)
    shape = x.shape
    h, w = shape[-2:]
    flat = x.reshape(-1, 1, h, w)
    dtype = flat.dtype
    if not flat.is_floating_point():
        flat = flat.float()
    a = math.radians(float(angle))
    cos, sin = math.cos(a), math.sin(a)
    # Output pixel (x, y) (y down, centred) samples the input at R(-angle) applied in image coordinates;
    # counter-clockwise on screen (y down) means input = [[cos, -sin], [sin, cos]] @ output.
    # grid_sample works in normalised coordinates, so scale by the aspect ratio when h != w.
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=flat.dtype)
    grid = F.affine_grid(theta[None].expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if fill:
        v = float(fill[0] if isinstance(fill, (list, tuple)) else fill)
        ones = F.grid_sample(torch.ones_like(flat), grid, mode="nearest", padding_mode="zeros",
                             align_corners=False)
        out = out + (1 - ones) * v
    return out.to(dtype).reshape(shape)
