"""The per-pixel binary logistic regression of papers/active-learning.md (eq. 1-4), fitted with BFGS.

A pixel with standardised features ``x`` has logit ``z = x . w + b`` and probability ``p = sigma(z)``.
The loss over ``n`` labelled pixels (``y`` = 1 particle, 0 background; everything else unlabelled) is

    L = [ BCE(labelled) + l2 / 2 |w|^2 + pi_weight (logit(mean p) - logit(pi))^2 ] / n        (eq. 4)

with the binary cross-entropy (eq. 1), the L2 penalty on the weights (eq. 2; the bias is not penalised) and
the penalty on the expected fraction of particle pixels (eq. 3), ``mean p`` taken over a sample of all pixels
of the micrographs. BCE terms are weighted so that positives and negatives count equally (``balance``; the
reference weights them too), and the fit starts from zeros. The gradient is analytic (numpy): tests compare
it with finite differences.
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy import optimize
from scipy.special import expit


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """``log(sigma(z))`` without overflow."""
    return -np.logaddexp(0.0, -z)


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


@attrs.define
class Problem:
    """What the loss sees: labelled pixels ``x`` (n, C), targets ``y`` (n,), their BCE weights, and a sample
    ``u`` (m, C) of all pixels for the expected-pi term."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    u: np.ndarray
    l2: float = 1.0
    pi: float = 0.01
    pi_weight: float = 1000.0


def class_weights(y: np.ndarray, balance: bool = True) -> np.ndarray:
    """BCE weights: 1 each, or (``balance``) ``n / (2 n_class)`` so that each class weighs half."""
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(y)
    n_pos, n_neg = float(y.sum()), float((1 - y).sum())
    if balance and n_pos > 0 and n_neg > 0:
        w[y > 0.5] = y.size / (2 * n_pos)
        w[y <= 0.5] = y.size / (2 * n_neg)
    return w


def loss_and_grad(params: np.ndarray, problem: Problem) -> tuple[float, np.ndarray]:
    """Loss (eq. 4) and its gradient with respect to ``params = [w (C), b]``."""
    w, b = params[:-1], params[-1]
    x, y, c = problem.x, problem.y, problem.weight
    n = max(1, y.size)
    grad_w = problem.l2 * w  # eq. 2
    grad_b = 0.0
    loss = 0.5 * problem.l2 * float(w @ w)
    if y.size:
        z = x @ w + b
        loss += float(-np.sum(c * (y * log_sigmoid(z) + (1 - y) * log_sigmoid(-z))))  # eq. 1
        dz = c * (expit(z) - y)
        grad_w = grad_w + x.T @ dz
        grad_b += float(dz.sum())
    if problem.pi_weight > 0 and problem.u.shape[0]:
        zu = problem.u @ w + b
        pu = expit(zu)
        mean_p = float(np.clip(pu.mean(), 1e-12, 1 - 1e-12))
        gap = logit(mean_p) - logit(problem.pi)
        loss += problem.pi_weight * gap * gap  # eq. 3
        # d/dz_u of the penalty: 2 pw gap * dlogit/dp * dp/dz_u / m
        dzu = 2 * problem.pi_weight * gap / (mean_p * (1 - mean_p)) * pu * (1 - pu) / pu.size
        grad_w = grad_w + problem.u.T @ dzu
        grad_b += float(dzu.sum())
    return loss / n, np.append(grad_w, grad_b) / n  # eq. 4


@attrs.define
class Logistic:
    """A fitted model: weights on standardised features (``(x - mean) / scale``) and a bias."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    info: dict = attrs.Factory(dict)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits of ``(C, H, W)`` features: ``(H, W)``."""
        w = (self.weights / self.scale).astype(np.float32)
        b = float(self.bias - np.sum(self.weights * self.mean / self.scale))
        return np.tensordot(w, np.asarray(features, dtype=np.float32), axes=(0, 0)) + np.float32(b)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"blr.weights": self.weights.astype(np.float64), "blr.bias": np.array([self.bias]),
                "blr.mean": self.mean.astype(np.float64), "blr.scale": self.scale.astype(np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict | None = None) -> Logistic:
        return cls(np.asarray(arrays["blr.weights"], np.float64), float(np.asarray(arrays["blr.bias"])[0]),
                   np.asarray(arrays["blr.mean"], np.float64), np.asarray(arrays["blr.scale"], np.float64),
                   dict(info or {}))


def fit(x: np.ndarray, y: np.ndarray, sample: np.ndarray, *, l2: float = 1.0, pi: float = 0.01,
        pi_weight: float = 1000.0, balance: bool = True, max_iter: int = 500) -> Logistic:
    """Fit eq. 4 with BFGS (``scipy.optimize.minimize(jac=True)``) from zeros.

    Parameters
    ----------
    x, y : labelled pixels' features ``(n, C)`` and targets ``(n,)`` (1 particle, 0 background)
    sample : ``(m, C)`` features of pixels drawn from all micrographs (expected-pi term, standardisation)
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, sample.shape[1])
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    sample = np.asarray(sample, dtype=np.float64)
    mean = sample.mean(axis=0)
    scale = sample.std(axis=0)
    scale[~(scale > 1e-8)] = 1.0
    problem = Problem((x - mean) / scale, y, class_weights(y, balance), (sample - mean) / scale, l2, pi, pi_weight)
    result = optimize.minimize(loss_and_grad, np.zeros(x.shape[1] + 1), args=(problem,), jac=True, method="BFGS",
                               options={"maxiter": int(max_iter), "gtol": 1e-6})
    return Logistic(result.x[:-1].copy(), float(result.x[-1]), mean, scale,
                    {"loss": float(result.fun), "iterations": int(result.nit), "converged": bool(result.success),
                     "labelled_pixels": int(y.size), "positive_pixels": int(y.sum())})
