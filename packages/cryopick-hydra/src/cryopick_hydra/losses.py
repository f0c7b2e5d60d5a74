"""HydraPicker's losses (thesis §3.2): focal classification (eq. 3.3), L1 localisation over matched anchors
(eq. 3.2) and the bias loss that ties the dataset heads to the generic head (eq. 3.4), combined as
``l_Hydra = l_loc + lambda_cls l_cls + lambda_bias l_bias`` (eq. 3.1).

Registered (``cryopick_register_losses``) with ``inputs="dense"`` (``loss(prediction, target)``) for the
focal and L1 losses and ``inputs="head-weights"`` (``loss(dataset_heads, generic_head)``) for the bias loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FocalLoss:
    """Focal classification loss (eq. 3.3; Lin et al. 2017):
    ``sum_i -1/2 alpha_{c_i} (1 - p_i)^gamma log p_i`` over all anchors, with ``p_i`` the probability of the
    true class, ``alpha`` for particles and ``1 - alpha`` for background, divided by the number of particle
    anchors (at least 1) so that the scale does not depend on the crop size.

    Called as ``loss(logits, targets)``: logits and 0/1 targets of the same shape.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        self.alpha = alpha
        self.gamma = gamma

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        # log p of the true class, stable for large logits
        log_p = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p = log_p.exp()
        alpha = self.alpha * targets + (1.0 - self.alpha) * (1.0 - targets)
        terms = -0.5 * alpha * (1.0 - p) ** self.gamma * log_p
        return terms.sum() / targets.sum().clamp(min=1.0)


class L1Localisation:
    """Localisation loss (eq. 3.2): ``sum_(i,j) in M ||(a_i + dp_i) - p_j||_1`` over matched anchor-particle
    pairs, divided by the number of pairs (at least 1).

    Called as ``loss(predicted_centres, true_centres)``: ``(n, 2)`` tensors of the matched pairs (the
    caller decodes the anchors and chooses the unit; the picker uses cells).
    """

    def __call__(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = (predicted - target).abs().sum()
        return total / max(int(predicted.shape[0]), 1)


class BiasLoss:
    """Bias (generalisation) loss (eq. 3.4): ``(1/N) sum_k ||W_Sk - W_G||_2`` over the N dataset heads;
    zero when every head equals the generic one.

    Called as ``loss(dataset_heads, generic_head)``: ``(N, P)`` flattened head weights and ``(P,)``
    (:func:`cryopick_hydra.model.head_vector`).
    """

    def __call__(self, dataset_heads: torch.Tensor, generic_head: torch.Tensor) -> torch.Tensor:
        if dataset_heads.ndim == 1:
            dataset_heads = dataset_heads[None]
        return torch.linalg.vector_norm(dataset_heads - generic_head[None], dim=1).mean()


def hydra_loss(loc: torch.Tensor, cls: torch.Tensor, bias: torch.Tensor | float = 0.0, lambda_cls: float = 1.0,
               lambda_bias: float = 1.0) -> torch.Tensor:
    """``l_Hydra = l_loc + lambda_cls l_cls + lambda_bias l_bias`` (eq. 3.1)."""
    return loc + lambda_cls * cls + lambda_bias * bias
