"""Picking with a HydraPicker head on whole micrographs, tile by tile (bounded memory at any size).

The image is cut into tiles of ``tile`` px (a multiple of the 16 px cell) on the cell grid; each tile is
run with ``margin`` px of its neighbours (zeros beyond the micrograph: the mean of a normalised image)
and keeps the cells of its core, so every anchor of the micrograph is scored once. The trunk's
activations of one tile (64 channels at full resolution) bound the memory: about 100 MB for the default
512 px tiles, whatever the micrograph's size.
"""

from __future__ import annotations

import numpy as np

from cryopick.particles import Particles
from cryopick_hydra.anchors import CELL_PX, OFFSET_SCALE, anchor_centres, decode


def _round_cells(value: int) -> int:
    return max(CELL_PX, int(np.ceil(value / CELL_PX)) * CELL_PX)


def score_grid(net, image: np.ndarray, head: str, *, tile: int = 512, margin: int = 64, device: str = "cpu"):
    """Logits ``(ny, nx)`` and decoded centres ``(ny, nx, 2)`` (``x, y`` in image pixels) of every 16 px
    cell of ``image``, with head ``head``."""
    import torch
    import torch.nn.functional as F

    tile, margin = _round_cells(tile), _round_cells(margin) if margin > 0 else 0
    h, w = image.shape
    ny, nx = -(-h // CELL_PX), -(-w // CELL_PX)
    tile = min(tile, max(ny, nx) * CELL_PX)  # a small micrograph: one tile of its own size, not a padded one
    logits = np.empty((ny, nx), dtype=np.float32)
    offsets = np.empty((ny, nx, 2), dtype=np.float32)
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    # padded so that every tile with its margins lies inside: zeros around the micrograph
    img = F.pad(img, (margin, nx * CELL_PX - w + margin + tile, margin, ny * CELL_PX - h + margin + tile))
    was_training = net.training
    net.eval()
    cells = tile // CELL_PX
    m = margin // CELL_PX
    with torch.inference_mode():
        for y0 in range(0, ny * CELL_PX, tile):
            for x0 in range(0, nx * CELL_PX, tile):
                window = img[y0: y0 + tile + 2 * margin, x0: x0 + tile + 2 * margin]
                lg, off = net(window[None, None].to(device), head)
                i0, j0 = y0 // CELL_PX, x0 // CELL_PX
                ci, cj = min(cells, ny - i0), min(cells, nx - j0)
                logits[i0: i0 + ci, j0: j0 + cj] = lg[0, m: m + ci, m: m + cj].float().cpu().numpy()
                offsets[i0: i0 + ci, j0: j0 + cj] = (off[0, :, m: m + ci, m: m + cj].permute(1, 2, 0)
                                                     .float().cpu().numpy())
    net.train(was_training)
    anchors = anchor_centres(ny, nx).reshape(ny, nx, 2)
    return logits, decode(offsets.astype(np.float64), anchors, CELL_PX, OFFSET_SCALE)


def augmented_score_grid(net, image: np.ndarray, head: str, n: int = 4, *, tile: int = 512, margin: int = 64,
                         device: str = "cpu"):
    """:func:`score_grid` averaged over ``n`` rotations/mirrors of ``image`` (``cryopick.tta``: 1, 2, 4 or 8).

    The image is first padded with zeros (the mean of a normalised image) to whole 16 px cells, so each
    transform maps the cell grid onto itself exactly: cell ``(i, j)`` of every pass covers the same pixels.
    Each pass's logits are mapped back cell for cell and its decoded centres point for point; the result
    is their mean per cell, with the shapes :func:`score_grid` returns for ``image``."""
    from cryopick.tta import forward, inverse, points_back, transforms

    group = transforms(n)
    if n == 1:
        return score_grid(net, image, head, tile=tile, margin=margin, device=device)
    h, w = image.shape
    ny, nx = -(-h // CELL_PX), -(-w // CELL_PX)
    padded = np.zeros((ny * CELL_PX, nx * CELL_PX), dtype=np.float32)
    padded[:h, :w] = image
    logits = np.zeros((ny, nx), dtype=np.float64)
    centres = np.zeros((ny, nx, 2), dtype=np.float64)
    for turns, mirror in group:
        turned = forward(padded, turns, mirror)
        lg, xy = score_grid(net, turned, head, tile=tile, margin=margin, device=device)
        xy = points_back(xy.reshape(-1, 2), padded.shape, turns, mirror).reshape(xy.shape)
        logits += inverse(lg, turns, mirror)
        centres += inverse(xy, turns, mirror)
    return (logits / len(group)).astype(np.float32), centres / len(group)


def pick_image(net, image: np.ndarray, head: str, diameter_px: float, *, nms_fraction: float = 0.5,
               tile: int = 512, margin: int = 64, device: str = "cpu", tta: int = 1) -> Particles:
    """Candidates of ``image``: one per cell at its decoded centre, scored by the particle logit (the mean
    over ``tta`` rotations/mirrors, :func:`augmented_score_grid`), then greedy NMS within ``nms_fraction`` x
    the diameter (the particle radius by default)."""
    from cryopick.nms import greedy_nms

    logits, centres = augmented_score_grid(net, image, head, tta, tile=tile, margin=margin, device=device)
    h, w = image.shape
    xy = centres.reshape(-1, 2)
    cands = Particles(np.clip(xy[:, 0], 0, w - 1), np.clip(xy[:, 1], 0, h - 1), logits.reshape(-1).astype(np.float64))
    return greedy_nms(cands, max(1.0, nms_fraction * diameter_px))
