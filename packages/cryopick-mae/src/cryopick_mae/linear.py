"""A linear probe on the encoder's features: exemplar windows against the reference micrograph's random
windows (cryopick's addition to CryoMAE's stage 2, ``MAEConfig.linear``).

The random windows are unlabelled: most are background, some hold particles. A classifier trained to tell
labelled from unlabelled examples ranks examples as one that tells particles from background would, when the
labels are a random sample of the particles (Elkan & Noto 2008, "Learning classifiers from only positive and
unlabeled data", lemma 1: p(labelled | x) = c p(particle | x) with a constant c). Its score is added to the
paper's cosine similarity after standardising both over the random windows (:func:`standardiser`).
"""

from __future__ import annotations

import numpy as np


def logistic_objective(positives: np.ndarray, unlabelled: np.ndarray, c: float):
    """The loss of :func:`fit_logistic` and its gradient, as one function of ``p = (w, b)``."""
    x = np.concatenate([positives, unlabelled]).astype(np.float64)
    y = np.r_[np.ones(len(positives)), np.zeros(len(unlabelled))]
    weight = np.where(y > 0, 0.5 / len(positives), 0.5 / len(unlabelled))
    penalty = 1.0 / (c * len(y))

    def loss_and_grad(p: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = p[:-1], p[-1]
        z = x @ w + b
        loss = float(weight @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * penalty * float(w @ w)
        g = weight * (0.5 * (1.0 + np.tanh(0.5 * z)) - y)  # weight * (sigmoid(z) - y), overflow-free
        return loss, np.r_[x.T @ g + penalty * w, g.sum()]

    return loss_and_grad


def fit_logistic(positives: np.ndarray, unlabelled: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights ``w`` and intercept ``b`` of a logistic regression of positive (1) against unlabelled (0),
    each class weighted equally:

        L(w, b) = 1/2 mean_pos log(1 + e^-z) + 1/2 mean_unl log(1 + e^z) + |w|^2 / (2 c N),  z = x.w + b,

    ``N`` the number of examples (the intercept is not penalised); minimised by L-BFGS from zeros with the
    analytic gradient."""
    from scipy.optimize import minimize

    result = minimize(logistic_objective(positives, unlabelled, c), np.zeros(positives.shape[1] + 1), jac=True,
                      method="L-BFGS-B", options={"maxiter": 2000})
    return result.x[:-1].astype(np.float32), float(result.x[-1])


def standardiser(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (floored) of ``values``: the scale a score is put on before two are added."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(max(values.std(), 1e-8))


def jitter_offsets(step: float, fraction: float) -> np.ndarray:
    """The 3 x 3 offsets ``(dx, dy)`` of +-``fraction`` of a sliding ``step`` (and 0) around a centre: the
    positions at which the sliding grid may meet a particle."""
    d = fraction * step
    return np.array([(dx, dy) for dy in (-d, 0.0, d) for dx in (-d, 0.0, d)], dtype=np.float64)
