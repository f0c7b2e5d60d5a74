"""Training loops: self-supervised MAE pre-training on unlabelled regions (CryoMAE §3.2.1) and few-shot
fine-tuning on one reference micrograph with the total loss of eq. 6 (§3.2.2-3.2.3, §4.1.5)."""

from __future__ import annotations

import numpy as np
import torch

from cryopick.picker import ModelState
from cryopick.progress import progress
from cryopick.torchutil import load_arrays, state_dict_to_arrays
from cryopick_mae.losses import SelfCrossSimilarityLoss, total_loss
from cryopick_mae.model import ARCHITECTURE_KEYS, MaskedAutoencoderViT, build_vit_mae
from cryopick_mae.windows import crop_random, to_input

MODEL_PREFIX = "model."


def architecture_of(config) -> dict:
    """The architecture fields of a picker config (or of a dict)."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    return {k: get(k) for k in ARCHITECTURE_KEYS}


def model_arrays(model: MaskedAutoencoderViT) -> dict[str, np.ndarray]:
    return {MODEL_PREFIX + k: v for k, v in state_dict_to_arrays(model).items()}


def model_from_state(state: ModelState) -> MaskedAutoencoderViT:
    """Rebuild the network stored in ``state`` (a pre-training checkpoint or a trained picker)."""
    model = build_vit_mae(**state.config["architecture"])
    load_arrays(model, {k[len(MODEL_PREFIX):]: v for k, v in state.arrays.items() if k.startswith(MODEL_PREFIX)})
    return model


def sample_regions(images: list[np.ndarray], n: int, window_px: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random regions of ``window_px`` pixels, spread evenly over ``images``."""
    picks = rng.integers(0, len(images), size=n)
    out = np.empty((n, window_px, window_px), dtype=np.float32)
    for i in np.unique(picks):
        where = np.flatnonzero(picks == i)
        out[where] = crop_random(images[i], where.size, window_px, rng)
    return out


def pretrain(model: MaskedAutoencoderViT, sample, *, steps: int, lr: float, mask_ratio: float, device: str = "cpu",
             window_norm: bool = True, desc: str = "mae pre-training") -> list[float]:
    """Masked-autoencoder pre-training: ``sample()`` gives the next batch of regions ``(B, h, w)`` (see
    :func:`fresh_regions` and :func:`region_epochs`). Returns the reconstruction loss per step."""
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    losses = []
    for _ in progress(range(steps), desc=desc):
        x = to_input(sample(), model.image_size, window_norm, device)
        loss, _, _, _ = model(x, mask_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def fresh_regions(images: list[np.ndarray], batch: int, window_px: int, rng: np.random.Generator):
    """Sampler of new random regions at every step (sees all the background variability of ``images``)."""
    return lambda: sample_regions(images, batch, window_px, rng)


def region_epochs(regions: np.ndarray, batch: int, rng: np.random.Generator):
    """Sampler that walks a fixed set of regions in shuffled order, epoch after epoch (the paper's
    pre-training on 10 regions per micrograph)."""
    state = {"order": np.zeros(0, dtype=int), "pos": 0}
    batch = min(batch, len(regions))

    def sample() -> np.ndarray:
        if state["pos"] + batch > state["order"].size:
            state["order"], state["pos"] = rng.permutation(len(regions)), 0
        idx = state["order"][state["pos"]: state["pos"] + batch]
        state["pos"] += batch
        return regions[idx]

    return sample


def finetune(model: MaskedAutoencoderViT, positives: torch.Tensor, background: np.ndarray, *, window_px: int,
             steps: int, lr: float, mask_ratio: float, unlabelled_ratio: float, freeze_blocks: int,
             scs_loss: SelfCrossSimilarityLoss | None, beta: float, rng: np.random.Generator, device: str = "cpu",
             window_norm: bool = True, scs_masked: bool = True, pooling: str = "mean", desc: str = "mae fine-tuning") -> list[dict]:
    """Few-shot fine-tuning (CryoMAE stage 1): every step masks and reconstructs the exemplars
    ``positives`` (``(P, 1, S, S)`` model inputs, rotations included) together with
    ``unlabelled_ratio * P`` fresh random regions of the reference micrograph ``background``, and adds
    ``beta`` times the self-cross similarity loss of their encoder features (eq. 6): of the masked
    inputs as in the paper (``scs_masked``), or of a second, unmasked pass (the features picking uses). The first
    ``freeze_blocks`` encoder blocks (and the patch embedding) stay fixed."""
    model.to(device).train()
    model.freeze_encoder_blocks(freeze_blocks)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    positives = positives.to(device)
    n_pos = positives.shape[0]
    n_unl = max(1, int(round(unlabelled_ratio * n_pos)))
    history = []
    for _ in progress(range(steps), desc=desc):
        unl = to_input(crop_random(background, n_unl, window_px, rng), model.image_size, window_norm, device)
        x = torch.cat([positives, unl], dim=0)
        mse, _, _, feats = model(x, mask_ratio, pooling=pooling)
        if scs_loss is not None and not scs_masked:
            feats = model.features(x, pooling)
        scs = scs_loss(feats[:n_pos], feats[n_pos:]) if scs_loss is not None else None
        loss = total_loss(mse, scs, beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"loss": float(loss.detach()), "mse": float(mse.detach()),
                        "scs": float(scs.detach()) if scs is not None else float("nan")})
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return history


@torch.inference_mode()
def encode(model: MaskedAutoencoderViT, inputs: torch.Tensor, batch: int = 256, pooling: str = "mean") -> torch.Tensor:
    """Unmasked features of model inputs, in batches."""
    model.eval()
    return torch.cat([model.features(inputs[i: i + batch], pooling) for i in range(0, inputs.shape[0], batch)], dim=0)
