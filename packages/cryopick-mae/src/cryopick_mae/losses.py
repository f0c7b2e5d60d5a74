"""CryoMAE's self-cross similarity (SCS) loss, plain (eq. 1-3) and PU-adjusted (eq. 4-5), and the total
loss (eq. 6). Equation numbers refer to papers/cryomae.md.

Features are the encoder outputs of ``m`` labelled exemplars ``f_l`` (``(m, D)``) and ``n`` unlabelled
regions ``f_u`` (``(n, D)``); all similarities are cosine similarities.

PU adjustment (eq. 4-5, our derivation of the paper's Appendix A, which we do not have): each unlabelled
region is a particle with probability ``pi``. Counting it as a positive with weight ``pi`` and as a
negative with weight ``1 - pi``, the weighted positive set has total weight ``m + pi n`` and the negative
set ``(1 - pi) n``. The weighted mean similarity over positive pairs is then
``[S_ll + 2 pi S_lu + pi^2 S_uu] / (m + pi n)^2`` (eq. 4) and over positive-negative pairs
``[(1 - pi) S_lu + pi (1 - pi) S_uu] / ((m + pi n)(1 - pi) n)`` (eq. 5), with ``S_ll``, ``S_lu``,
``S_uu`` the *sums* of cosine similarities over exemplar pairs, exemplar-unlabelled pairs and unlabelled
pairs (all ordered pairs, the diagonal included, as in eq. 1). With ``pi = 0`` both reduce to eq. 1-2.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(len(a), len(b))`` cosine similarities."""
    return F.normalize(a, dim=1, eps=1e-8) @ F.normalize(b, dim=1, eps=1e-8).T


def self_cross_similarity(f_l: torch.Tensor, f_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S_self, S_cross)``: mean cosine similarity among exemplars (eq. 1) and between exemplars and
    unlabelled regions (eq. 2)."""
    s_self = cosine_matrix(f_l, f_l).mean()  # CryoMAE eq. 1: (1/m^2) sum_ij
    s_cross = cosine_matrix(f_l, f_u).mean()  # CryoMAE eq. 2: (1/mn) sum_ij
    return s_self, s_cross


def pu_self_cross_similarity(f_l: torch.Tensor, f_u: torch.Tensor, pi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S^_self, S^_cross)`` of eq. 4-5, ``pi`` the probability that an unlabelled region holds a particle."""
    m, n = f_l.shape[0], f_u.shape[0]
    s_ll = cosine_matrix(f_l, f_l).sum()
    s_lu = cosine_matrix(f_l, f_u).sum()
    s_uu = cosine_matrix(f_u, f_u).sum()
    positives = m + pi * n
    s_self = (s_ll + 2 * pi * s_lu + pi ** 2 * s_uu) / positives ** 2  # CryoMAE eq. 4
    s_cross = ((1 - pi) * s_lu + pi * (1 - pi) * s_uu) / (positives * (1 - pi) * n)  # CryoMAE eq. 5
    return s_self, s_cross


def scs_from_similarities(s_self: torch.Tensor, s_cross: torch.Tensor, alpha: float, tau: float) -> torch.Tensor:
    # CryoMAE eq. 3: L_SCS = max(tau, 1 + alpha * S_cross - (1 - alpha) * S_self)
    return torch.clamp(1 + alpha * s_cross - (1 - alpha) * s_self, min=tau)


@attrs.define
class SelfCrossSimilarityLoss:
    """Eq. 3 on eq. 1-2 (``pi = None``) or on the PU-adjusted eq. 4-5. Call with ``(f_l, f_u)``."""

    alpha: float = 0.7
    tau: float = 0.02
    pi: float | None = None

    def __call__(self, f_l: torch.Tensor, f_u: torch.Tensor) -> torch.Tensor:
        if self.pi is None or self.pi <= 0:
            s_self, s_cross = self_cross_similarity(f_l, f_u)
        else:
            s_self, s_cross = pu_self_cross_similarity(f_l, f_u, self.pi)
        return scs_from_similarities(s_self, s_cross, self.alpha, self.tau)


def scs_loss(alpha: float = 0.7, tau: float = 0.02) -> SelfCrossSimilarityLoss:
    """Registry target of ``scs``: the unadjusted self-cross similarity loss (eq. 1-3)."""
    return SelfCrossSimilarityLoss(alpha=float(alpha), tau=float(tau), pi=None)


def scs_pu_loss(alpha: float = 0.7, tau: float = 0.02, pi: float = 0.018) -> SelfCrossSimilarityLoss:
    """Registry target of ``scs-pu``: the PU-adjusted self-cross similarity loss (eq. 3-5)."""
    return SelfCrossSimilarityLoss(alpha=float(alpha), tau=float(tau), pi=float(pi))


def total_loss(mse: torch.Tensor, scs: torch.Tensor | None, beta: float = 5.0) -> torch.Tensor:
    # CryoMAE eq. 6: L_total = L_MSE + beta * L^_SCS
    return mse if scs is None else mse + beta * scs
