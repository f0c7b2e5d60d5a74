"""Anchors of HydraPicker's heads (§3.1): one square anchor per 16 x 16 px cell, centre offsets bounded by
``tanh``, and the matching of anchors to labelled particles by IoU (eq. 3.2).

Coordinates are ``(x, y)`` in pixels of the head's input, pixel ``k`` covering ``[k - 0.5, k + 0.5]``, so
cell ``(i, j)`` covers pixels ``16 j .. 16 j + 15`` and its anchor sits at ``(16 j + 7.5, 16 i + 7.5)``.
Everything here works on numpy and torch arrays alike.
"""

from __future__ import annotations

import numpy as np

#: Total stride of a head: four stride-2 blocks (§3.1), so one anchor per 16 x 16 px cell.
CELL_PX = 16
#: Largest centre offset from an anchor, in cells: ``centre = anchor + tanh(offset) * 0.75 * cell``.
OFFSET_SCALE = 0.75
#: IoU above which an anchor is matched to a particle (eq. 3.2).
MATCH_IOU = 0.6


def anchor_centres(ny: int, nx: int, cell: int = CELL_PX) -> np.ndarray:
    """Anchor centres of an ``ny x nx`` grid, ``(ny * nx, 2)`` as ``(x, y)``, row-major (row ``i`` then
    column ``j``), as the head's outputs are flattened."""
    iy, ix = np.mgrid[0:ny, 0:nx]
    return np.stack([(ix.ravel() + 0.5) * cell - 0.5, (iy.ravel() + 0.5) * cell - 0.5], axis=1).astype(np.float64)


def decode(offsets, anchors, cell: float = CELL_PX, scale: float = OFFSET_SCALE):
    """Particle centres from raw offsets: ``anchor + tanh(offset) * scale * cell`` (§3.1)."""
    tanh = offsets.tanh() if hasattr(offsets, "tanh") else np.tanh(offsets)
    return anchors + tanh * (scale * cell)


def encode(centres, anchors, cell: float = CELL_PX, scale: float = OFFSET_SCALE):
    """The raw offsets that :func:`decode` maps to ``centres`` (the inverse, for centres less than
    ``scale * cell`` from their anchor along each axis)."""
    u = (centres - anchors) / (scale * cell)
    if np.any(np.abs(np.asarray(u)) >= 1):
        raise ValueError(f"a centre is {scale} cells or more from its anchor; it cannot be encoded")
    return np.arctanh(u)


def box_iou(a: np.ndarray, size_a: float, b: np.ndarray, size_b: float) -> np.ndarray:
    """IoU of axis-aligned squares of side ``size_a`` centred at ``a (n, 2)`` and of side ``size_b`` at
    ``b (m, 2)``: ``(n, m)``."""
    ha, hb = size_a / 2.0, size_b / 2.0
    lo = np.maximum(a[:, None, :] - ha, b[None, :, :] - hb)
    hi = np.minimum(a[:, None, :] + ha, b[None, :, :] + hb)
    overlap = np.clip(hi - lo, 0.0, None).prod(axis=2)
    return overlap / (size_a ** 2 + size_b ** 2 - overlap)


def match_anchors(anchors: np.ndarray, centres: np.ndarray, box_px: float, anchor_px: float = CELL_PX,
                  iou: float = MATCH_IOU) -> np.ndarray:
    """The particle each anchor is matched to, or -1 (eq. 3.2): anchor boxes (``anchor_px`` square) matched
    to particle boxes (``box_px`` square) with IoU above ``iou``, and each particle's best anchor forced
    positive (so that every particle has one, whatever the sizes). ``(n_anchors,)`` integers."""
    matched = np.full(len(anchors), -1, dtype=np.int64)
    if len(centres) == 0 or len(anchors) == 0:
        return matched
    overlaps = box_iou(anchors, anchor_px, np.asarray(centres, dtype=np.float64), box_px)
    best = overlaps.argmax(axis=1)
    good = overlaps[np.arange(len(anchors)), best] > iou
    matched[good] = best[good]
    # forced: each particle's best anchor (a later particle wins a shared anchor)
    matched[overlaps.argmax(axis=0)] = np.arange(len(centres))
    return matched
