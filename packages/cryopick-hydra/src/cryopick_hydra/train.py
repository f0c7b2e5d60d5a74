"""Training HydraPicker (thesis §3.2, §4.1, §4.3): data sets, augmented crops, the loss of a minibatch, and
the training loop shared by ``cryopick hydra train`` (both phases) and the picker's few-shot head (§4.7).

Data (§4.1): each data set's micrographs are preprocessed as the picker preprocesses them (particles
rescaled to about ``target_diameter_px``, normalised), then padded with Gaussian noise whose mean and
standard deviation are those of the micrograph's background (pixels more than a diameter from every
label), so that rotated crops near the edges still look like ice.

Minibatches (§4.3): ``batch`` crops of ``crop`` px, each rotated by a random angle and flipped at random,
all from one data set (chosen in turn), trained with that data set's head.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs
import numpy as np

from cryopick.particles import Particles
from cryopick.progress import echo, progress
from cryopick_hydra.anchors import CELL_PX, OFFSET_SCALE, anchor_centres, decode, match_anchors


@attrs.define
class HydraDataset:
    """One labelled data set, preprocessed: padded training micrographs with their particle centres
    (padded frame) and the micrographs held out for validation (unpadded, with their labels)."""

    name: str
    diameter_px: float  # in preprocessed pixels
    images: list[np.ndarray] = attrs.Factory(list)
    centres: list[np.ndarray] = attrs.Factory(list)  # (n, 2) x, y in the padded frame
    regions: list[tuple[int, int, int, int]] = attrs.Factory(list)  # (y0, x0, h, w) of the micrograph
    validation: list[tuple[np.ndarray, Particles]] = attrs.Factory(list)

    @property
    def particles(self) -> int:
        return int(sum(len(c) for c in self.centres))


def background_stats(image: np.ndarray, labels: Particles | None, diameter_px: float) -> tuple[float, float]:
    """Mean and standard deviation of the pixels more than a diameter from every labelled centre (§4.1)."""
    keep = np.ones(image.shape, dtype=bool)
    if labels is not None and len(labels):
        from cryopick.nms import disk_footprint

        marks = np.zeros(image.shape, dtype=bool)
        ix = np.clip(np.round(labels.x).astype(int), 0, image.shape[1] - 1)
        iy = np.clip(np.round(labels.y).astype(int), 0, image.shape[0] - 1)
        marks[iy, ix] = True
        from scipy import ndimage

        near = ndimage.binary_dilation(marks, structure=disk_footprint(diameter_px))
        if (~near).sum() > 100:
            keep = ~near
    values = image[keep]
    return float(values.mean()), float(values.std() or 1.0)


def pad_with_noise(image: np.ndarray, pad: int, mean: float, std: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` inside a border of ``pad`` px of Gaussian noise (mean, std)."""
    h, w = image.shape
    out = rng.normal(mean, std, size=(h + 2 * pad, w + 2 * pad)).astype(np.float32)
    out[pad: pad + h, pad: pad + w] = image
    return out


def make_dataset(name: str, items: list[tuple[np.ndarray, Particles]], diameter_px: float, crop: int,
                 rng: np.random.Generator, validation: int = 0) -> HydraDataset:
    """A :class:`HydraDataset` from preprocessed ``(image, labels)`` pairs; the last ``validation``
    micrographs (keeping at least one for training) are held out for validation AP."""
    n_val = min(validation, len(items) - 1) if len(items) > 1 else 0
    train, val = items[: len(items) - n_val], items[len(items) - n_val:]
    pad = int(math.ceil(crop / math.sqrt(2))) + 2  # a rotated crop reaches crop / sqrt(2) from its centre
    data = HydraDataset(name, float(diameter_px), validation=[(np.asarray(im, np.float32), lab) for im, lab in val])
    for image, labels in train:
        mean, std = background_stats(image, labels, diameter_px)
        data.images.append(pad_with_noise(np.asarray(image, np.float32), pad, mean, std, rng))
        xy = labels.xy if labels is not None and len(labels) else np.zeros((0, 2))
        data.centres.append(np.asarray(xy, dtype=np.float64) + pad)
        data.regions.append((pad, pad, image.shape[0], image.shape[1]))
    return data


def sample_crops(data: HydraDataset, n: int, crop: int, rng: np.random.Generator, augment: bool = True):
    """``n`` crops of ``crop`` px from random micrographs of ``data`` and the particle centres inside each
    (crop pixels): ``(float32 (n, crop, crop), [array (k, 2)])``. With ``augment`` each crop is rotated by a
    uniform random angle and mirrored with probability 1/2 (§4.3)."""
    from scipy import ndimage

    crops = np.empty((n, crop, crop), dtype=np.float32)
    centres = []
    c = (crop - 1) / 2.0
    v, u = np.mgrid[0:crop, 0:crop].astype(np.float64)
    du, dv = u - c, v - c
    for k in range(n):
        m = int(rng.integers(len(data.images)))
        y0, x0, h, w = data.regions[m]
        # the crop's centre anywhere on the micrograph (the padding supplies the rest)
        cx, cy = x0 + rng.uniform(0, w) - 0.5, y0 + rng.uniform(0, h) - 0.5
        theta = rng.uniform(0, 2 * np.pi) if augment else 0.0
        flip = -1.0 if augment and rng.random() < 0.5 else 1.0
        cos, sin = math.cos(theta), math.sin(theta)
        # crop pixel d = (du, dv) shows the micrograph at centre + R(theta) F d, F mirroring x
        sx = cx + cos * flip * du - sin * dv
        sy = cy + sin * flip * du + cos * dv
        image = data.images[m]
        crops[k] = ndimage.map_coordinates(image, [sy, sx], order=1, mode="nearest")
        p = data.centres[m] - np.array([cx, cy])
        # inverse: d = F R(-theta) p
        px = flip * (cos * p[:, 0] + sin * p[:, 1]) + c
        py = -sin * p[:, 0] + cos * p[:, 1] + c
        inside = (px >= -0.5) & (px < crop - 0.5) & (py >= -0.5) & (py < crop - 0.5)
        centres.append(np.stack([px[inside], py[inside]], axis=1))
    return crops, centres


def detection_targets(centres: list[np.ndarray], ny: int, nx: int, box_px: float, iou: float):
    """Per crop: the 0/1 particle targets of the ``ny * nx`` anchors and the true centre of each matched
    anchor (eq. 3.2): ``(targets (B, ny * nx), matched index arrays, matched centres)``."""
    anchors = anchor_centres(ny, nx)
    targets = np.zeros((len(centres), ny * nx), dtype=np.float32)
    rows, cols, truth = [], [], []
    for b, xy in enumerate(centres):
        matched = match_anchors(anchors, xy, box_px, CELL_PX, iou)
        pos = np.nonzero(matched >= 0)[0]
        targets[b, pos] = 1.0
        rows.append(np.full(pos.size, b))
        cols.append(pos)
        truth.append(xy[matched[pos]])
    return targets, np.concatenate(rows), np.concatenate(cols), np.concatenate(truth).reshape(-1, 2), anchors


@attrs.define
class LossSettings:
    """Weights and matching of ``l_Hydra`` (eq. 3.1)."""

    focal: Callable
    localisation: Callable
    bias: Callable | None = None
    lambda_cls: float = 1.0
    lambda_bias: float = 1.0
    box_px: float = 22.0  # particle box (the rescaled particle diameter)
    iou: float = 0.6


def minibatch_loss(net, head: str, crops: np.ndarray, centres: list[np.ndarray], losses: LossSettings,
                   device: str = "cpu", bias_heads: list[str] | None = None, generic: str = "generic"):
    """``l_Hydra`` of one minibatch through ``head`` (eq. 3.1): the L1 of decoded centres of matched anchors
    in cells (eq. 3.2), the focal loss over all anchors (eq. 3.3) and, with ``bias_heads``, the bias loss
    between those heads and ``generic`` (eq. 3.4). Returns ``(loss, {part: value})``."""
    import torch

    from cryopick_hydra.model import head_vector

    x = torch.from_numpy(crops)[:, None].to(device)
    logits, offsets = net(x, head)
    b, ny, nx = logits.shape
    targets, rows, cols, truth, anchors = detection_targets(centres, ny, nx, losses.box_px, losses.iou)
    l_cls = losses.focal(logits.reshape(b, -1), torch.from_numpy(targets).to(device))
    flat = offsets.reshape(b, 2, -1).permute(0, 2, 1)  # (B, ny * nx, 2)
    sel = flat[torch.from_numpy(rows).long(), torch.from_numpy(cols).long()]
    a = torch.from_numpy(anchors[cols]).to(device, sel.dtype)
    predicted = decode(sel, a, CELL_PX, OFFSET_SCALE) / CELL_PX
    l_loc = losses.localisation(predicted, torch.from_numpy(truth).to(device, sel.dtype) / CELL_PX)
    parts = {"loc": float(l_loc.detach()), "cls": float(l_cls.detach())}
    total = l_loc + losses.lambda_cls * l_cls
    if bias_heads and losses.bias is not None:
        stacked = torch.stack([head_vector(net.heads[h]) for h in bias_heads])
        l_bias = losses.bias(stacked, head_vector(net.heads[generic]))
        parts["bias"] = float(l_bias.detach())
        total = total + losses.lambda_bias * l_bias
    return total, parts


def validate(net, data: HydraDataset, head: str, device: str = "cpu", tile: int = 512) -> tuple[float, float]:
    """Average precision of ``head`` on the held-out micrographs of ``data`` and the logit cut-off with the
    best F1 there (both NaN when there are none)."""
    from cryopick.metrics import evaluate
    from cryopick_hydra.inference import pick_image

    if not data.validation:
        return float("nan"), float("nan")
    cands, truth = {}, {}
    for k, (image, labels) in enumerate(data.validation):
        cands[str(k)] = pick_image(net, image, head, data.diameter_px, tile=tile, device=device)
        truth[str(k)] = labels
    result = evaluate(cands, truth, diameter_px=data.diameter_px, candidates=cands)
    return float(result.average_precision), float(result.best_threshold)


@attrs.define
class Schedule:
    """One phase of training (§4.3)."""

    steps: int
    batch: int
    crop: int
    lr: float
    optimizer: str = "adam"  # adam with cosine warm restarts (phase 1), or sgd with momentum (phase 2)
    momentum: float = 0.98
    restart_steps: int = 0  # cosine warm-restart period (0: one cosine over all steps)
    eval_every: int = 0  # steps between validations/checkpoints (0: only at the end)
    augment: bool = True


def make_optimizer(params, schedule: Schedule):
    import torch

    if schedule.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=schedule.lr, momentum=schedule.momentum)
        sched = None
    else:
        opt = torch.optim.Adam(params, lr=schedule.lr)
        period = schedule.restart_steps or max(1, schedule.steps)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=period)
    return opt, sched


def fit(net, datasets: list[HydraDataset], heads: dict[str, str], schedule: Schedule, losses: LossSettings, *,
        rng: np.random.Generator, device: str = "cpu", params=None, bias_heads: list[str] | None = None,
        start_step: int = 0, optimizer_state: dict | None = None, on_eval: Callable | None = None,
        desc: str = "hydra training") -> list[dict]:
    """Train ``net`` for ``schedule.steps`` minibatches (from ``start_step``), each from one data set in
    turn through its head ``heads[data.name]``. ``params``: what is trained (default: all parameters).
    ``on_eval(step, optimizer, scheduler)`` runs every ``eval_every`` steps and at the end (validation,
    checkpoints). Returns the loss history (one record per step)."""
    params = [p for p in (params if params is not None else net.parameters()) if p.requires_grad]
    opt, sched = make_optimizer(params, schedule)
    if optimizer_state:
        opt.load_state_dict(optimizer_state["optimizer"])
        if sched is not None and optimizer_state.get("scheduler"):
            sched.load_state_dict(optimizer_state["scheduler"])
    net.to(device).train()
    history = []
    start = time.perf_counter()
    steps = range(start_step, schedule.steps)
    for step in progress(steps, desc=desc, total=len(steps)):
        data = datasets[step % len(datasets)]
        crops, centres = sample_crops(data, schedule.batch, schedule.crop, rng, schedule.augment)
        loss, parts = minibatch_loss(net, heads[data.name], crops, centres, losses, device, bias_heads)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        history.append({"step": step + 1, "set": data.name, "loss": float(loss.detach()), **parts})
        last = step + 1 == schedule.steps
        if on_eval is not None and (last or (schedule.eval_every and (step + 1) % schedule.eval_every == 0)):
            net.eval()
            on_eval(step + 1, opt, sched)
            net.train()
    if history:
        recent = history[-min(len(history), 20):]
        echo(f"{desc}: {len(history)} steps in {time.perf_counter() - start:.0f} s, loss "
             f"{np.mean([r['loss'] for r in recent]):.4f} (last {len(recent)})")
    return history
