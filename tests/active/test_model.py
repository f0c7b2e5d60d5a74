"""The logistic regression of eq. 1-4: loss and gradient, and what BFGS recovers."""

import numpy as np
import pytest

from cryopick_active.model import Problem, class_weights, fit, logit, loss_and_grad


def _problem(rng, n=40, m=300, c=5, **kw):
    x = rng.normal(size=(n, c))
    y = (rng.random(n) < 0.4).astype(float)
    return Problem(x, y, class_weights(y), rng.normal(size=(m, c)), **kw)


@pytest.mark.parametrize("pi_weight", [0.0, 1000.0])
def test_gradient_matches_finite_differences(pi_weight):
    rng = np.random.default_rng(0)
    problem = _problem(rng, l2=1.0, pi=0.01, pi_weight=pi_weight)
    params = rng.normal(scale=0.3, size=6)
    _, grad = loss_and_grad(params, problem)
    eps = 1e-6
    numeric = np.array([(loss_and_grad(params + eps * e, problem)[0] - loss_and_grad(params - eps * e, problem)[0])
                        / (2 * eps) for e in np.eye(6)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_loss_terms_are_the_papers():
    """Zero weights, bias b: BCE = n log(1 + e^-b) style terms, no L2, and the pi penalty of eq. 3, all / n."""
    x = np.zeros((2, 3))
    y = np.array([1.0, 0.0])
    u = np.zeros((4, 3))
    b = 0.7
    problem = Problem(x, y, np.ones(2), u, l2=1.0, pi=0.1, pi_weight=10.0)
    loss, _ = loss_and_grad(np.r_[np.zeros(3), b], problem)
    p = 1 / (1 + np.exp(-b))
    bce = -(np.log(p) + np.log(1 - p))
    penalty = 10.0 * (b - logit(0.1)) ** 2  # logit(mean p) = b when every pixel has logit b
    assert loss == pytest.approx((bce + penalty) / 2)


def test_bfgs_recovers_a_separating_direction():
    rng = np.random.default_rng(1)
    direction = np.array([2.0, -1.0, 0.5, 0.0, 0.0])
    direction /= np.linalg.norm(direction)
    x = rng.normal(size=(400, 5))
    y = (x @ direction + 0.1 * rng.normal(size=400) > 0).astype(float)
    model = fit(x, y, x, l2=1.0, pi_weight=0.0)
    w = model.weights / model.scale
    assert np.dot(w / np.linalg.norm(w), direction) > 0.98
    assert model.info["converged"]
    # its logits classify the training points
    logits = model.logits(x.T[:, :, None])[:, 0]
    assert np.mean((logits > 0) == (y > 0.5)) > 0.95


def test_pi_penalty_alone_sets_the_expected_fraction():
    """No labels: the fit only matches the mean probability to pi (eq. 3)."""
    rng = np.random.default_rng(2)
    sample = rng.normal(size=(500, 4))
    model = fit(np.zeros((0, 4)), np.zeros(0), sample, pi=0.05, pi_weight=1000.0)
    p = 1 / (1 + np.exp(-model.logits(sample.T[:, :, None])[:, 0]))
    assert p.mean() == pytest.approx(0.05, rel=1e-3)


def test_balanced_weights_give_each_class_half():
    y = np.array([1, 0, 0, 0], dtype=float)
    w = class_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    assert np.all(class_weights(np.ones(3)) == 1)
