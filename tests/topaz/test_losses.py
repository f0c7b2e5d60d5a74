"""Each loss on a hand-computed case (logits 0 give probability 1/2)."""

import math

import pytest
import torch

from cryopick_topaz.losses import GEKL, NNPU, PN, GEBinomial, binomial_log_pmf, build_loss

LN2 = math.log(2)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_pn():
    # pi * L(0, 1) + (1 - pi) * L(0, 0) = ln 2 for any pi.
    assert PN()(t(0.0), t(0.0, 0.0), 0.3).item() == pytest.approx(LN2)
    # Only unlabelled: (1 - pi) * softplus(2).
    assert PN()(t(), t(2.0), 0.25).item() == pytest.approx(0.75 * math.log1p(math.exp(2.0)))


def test_ge_kl():
    # L(0, 1) + 10 * KL(0.25 || 0.5) = ln 2 + 10 * (0.25 ln 0.5 + 0.75 ln 1.5).
    expected = LN2 + 10 * (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    assert GEKL()(t(0.0), t(0.0, 0.0), 0.25).item() == pytest.approx(expected)
    # KL vanishes when the unlabelled mean equals pi.
    assert GEKL(slack=10)(t(), t(0.0, 0.0), 0.5).item() == pytest.approx(0.0, abs=1e-12)


def test_ge_binomial():
    # N = 2 unlabelled at p = 1/2: mu = 1, sigma^2 = 1/2, q(k) ~ exp(-(k - 1)^2) = (e^-1, 1, e^-1) / Z;
    # Binom(k; 2, 1/2) = (1/4, 1/2, 1/4). Loss = L(0, 1) - sum q log p.
    z = 1 + 2 / math.e
    ce = -(2 / math.e * math.log(0.25) + math.log(0.5)) / z
    assert GEBinomial()(t(0.0), t(0.0, 0.0), 0.5).item() == pytest.approx(LN2 + ce)
    assert GEBinomial(slack=3.0)(t(), t(0.0, 0.0), 0.5).item() == pytest.approx(3 * ce)


def test_binomial_log_pmf():
    lp = binomial_log_pmf(3, 0.2, torch.float64)
    assert torch.exp(lp).sum().item() == pytest.approx(1.0)
    assert lp[1].item() == pytest.approx(math.log(3 * 0.2 * 0.8 ** 2))


def test_nnpu():
    # Non-negative branch: pi L(0,1) + [L(0,0) - pi L(0,0)] = ln 2.
    assert NNPU()(t(0.0), t(0.0, 0.0), 0.5).item() == pytest.approx(LN2)
    # Negative risk below 0: softplus(-5) - 0.5 softplus(3) < 0 -> returns its negation.
    neg = math.log1p(math.exp(-5)) - 0.5 * math.log1p(math.exp(3))
    assert neg < 0
    assert NNPU()(t(3.0), t(-5.0), 0.5).item() == pytest.approx(-neg)


def test_gradients_flow_and_names():
    for name in ("pn", "ge-kl", "ge-binomial", "nnpu"):
        pos = torch.zeros(4, requires_grad=True)
        unl = torch.zeros(30, requires_grad=True)
        build_loss(name)(pos, unl, 0.05).backward()
        assert torch.isfinite(unl.grad).all() and unl.grad.abs().sum() > 0
    # GE pushes unlabelled logits down when their mean probability exceeds pi.
    unl = torch.zeros(30, requires_grad=True)
    GEBinomial()(torch.zeros(0), unl, 0.05).backward()
    assert (unl.grad > 0).all()
    with pytest.raises(ValueError):
        build_loss("bogus")
    assert build_loss("ge-kl").slack == 10 and build_loss("ge-binomial").slack == 1
