"""Positive-unlabelled objectives of Topaz (Bepler et al. 2019, Online Methods §3-5).

Each loss is built from keyword parameters and called as ``loss(pos_logits, unl_logits, pi)``:
logits of crops centred on labelled positives, logits of unlabelled crops, and ``pi``, by default the
fraction of positives among the *unlabelled* crops; a loss whose class sets ``prior = "total"`` (PN) gets
the class prior itself. It returns a scalar tensor. Classifier outputs ``g(x)`` are
``sigmoid(logit)``; ``L`` is the logistic (cross-entropy) loss.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F


def _bce(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _clamp_pi(pi: float) -> float:
    return min(max(float(pi), 1e-6), 1.0 - 1e-6)


@attrs.define
class PN:
    """Positives vs unlabelled-as-negatives:
    ``pi E_P[L(g, 1)] + (1 - pi) E_U[L(g, 0)]`` (Online Methods §3, eq. PN). ``pi`` is the class prior
    (not the unlabelled crops' positive fraction, which is ~0 when labels are complete)."""

    prior = "total"

    def __call__(self, pos, unl, pi):
        pi = _clamp_pi(pi)
        terms = []
        if pos.numel():
            terms.append(pi * _bce(pos, 1.0))
        if unl.numel():
            terms.append((1 - pi) * _bce(unl, 0.0))
        return sum(terms) if terms else pos.sum() * 0


@attrs.define
class GEKL:
    """GE-KL: ``E_P[L(g, 1)] + slack * KL(pi || E_U[g])`` (Online Methods §4, eq. GE-KL), the generalised
    expectation criterion of Mann & McCallum with the Bernoulli KL between the known fraction ``pi`` and the
    classifier's mean over the unlabelled minibatch. ``slack`` (lambda) is 10 as in the paper."""

    slack: float = 10.0

    def __call__(self, pos, unl, pi):
        pi = _clamp_pi(pi)
        loss = _bce(pos, 1.0) if pos.numel() else pos.sum() * 0
        if unl.numel():
            p_hat = torch.sigmoid(unl).mean().clamp(1e-7, 1 - 1e-7)
            kl = pi * math.log(pi) + (1 - pi) * math.log(1 - pi) - pi * torch.log(p_hat) \
                - (1 - pi) * torch.log1p(-p_hat)
            loss = loss + self.slack * kl
        return loss


def binomial_log_pmf(n: int, pi: float, dtype=torch.float32, device="cpu"):
    """``log Binom(k; n, pi)`` for ``k = 0..n``."""
    k = torch.arange(n + 1, dtype=torch.float64, device=device)
    logc = torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    return (logc + k * math.log(pi) + (n - k) * math.log1p(-pi)).to(dtype)


@attrs.define
class GEBinomial:
    """GE-binomial (Online Methods §4): ``E_P[L(g, 1)] - slack * sum_k q(k) log Binom(k; N, pi)``.

    ``q`` is the classifier's distribution of the number of positives among the ``N`` unlabelled crops,
    approximated by a Gaussian with mean ``mu = sum g`` and variance ``sigma^2 = sum g (1 - g)`` evaluated
    at ``k = 0..N`` and normalised (a softmax of ``-(k - mu)^2 / (2 sigma^2)``). ``slack`` (lambda) is 1."""

    slack: float = 1.0

    def __call__(self, pos, unl, pi):
        pi = _clamp_pi(pi)
        loss = _bce(pos, 1.0) if pos.numel() else pos.sum() * 0
        if unl.numel():
            p = torch.sigmoid(unl)
            n = p.numel()
            mu = p.sum()
            var = (p * (1 - p)).sum().clamp_min(1e-6)
            k = torch.arange(n + 1, dtype=p.dtype, device=p.device)
            q = torch.softmax(-(k - mu) ** 2 / (2 * var), dim=0)
            log_binom = binomial_log_pmf(n, pi, p.dtype, p.device)
            loss = loss - self.slack * torch.sum(q * log_binom)
        return loss


@attrs.define
class NNPU:
    """Non-negative PU risk of Kiryo et al. (2017) with the logistic loss:
    ``pi E_P[L(g,1)] + max(-beta, E_U[L(g,0)] - pi E_P[L(g,0)])``; when the negative-class risk drops below
    ``-beta`` the returned value is ``-gamma`` times that risk, so the gradient step pushes it back up
    (their Algorithm 1). ``beta = 0``, ``gamma = 1``."""

    beta: float = 0.0
    gamma: float = 1.0

    def __call__(self, pos, unl, pi):
        pi = _clamp_pi(pi)
        if not pos.numel():
            return _bce(unl, 0.0)
        pos_risk = pi * _bce(pos, 1.0)
        neg_risk = (_bce(unl, 0.0) if unl.numel() else pos.sum() * 0) - pi * _bce(pos, 0.0)
        if neg_risk.item() < -self.beta:
            return -self.gamma * neg_risk
        return pos_risk + neg_risk


def reconstruction_error(recon, x):
    """The autoencoder term's expectation, Online Methods §5: ``E_x ||x - d(f(x))||^2``, the squared L2 norm
    of each crop's error (a sum over its pixels), averaged over the minibatch."""
    return ((recon - x) ** 2).flatten(1).sum(1).mean()


LOSSES = {"pn": PN, "ge-kl": GEKL, "ge-binomial": GEBinomial, "nnpu": NNPU}


def build_loss(name: str, slack: float | None = None):
    """A loss by name; ``slack`` (lambda) applies to the GE losses (None = the paper's value)."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown topaz loss {name!r}; choose one of {', '.join(LOSSES)}") from None
    if slack is not None and cls in (GEKL, GEBinomial):
        return cls(slack=slack)
    return cls()
