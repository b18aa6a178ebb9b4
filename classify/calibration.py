"""Numerics of training a head without torch: logistic regression, Platt scaling, thresholds, ECE.

Owns the small, deterministic numpy solvers that ``train`` uses on fixed
features (Newton's method on an L2-regularised logistic loss; Platt scaling is
the same solver on one feature), the per-label threshold search and the
expected calibration error. Pure functions on arrays; no I/O, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    weights: np.ndarray | None = None,
    iterations: int = 50,
) -> tuple[np.ndarray, float]:
    """Minimise ``mean_w BCE(sigmoid(x @ w + b), y) + l2 * |w|^2`` by Newton steps; returns (w, b)."""
    n, d = x.shape
    sample = np.ones(n) if weights is None else weights.astype(np.float64)
    sample = sample / sample.sum()
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, 2.0 * l2)
    reg[-1] = 1e-8  # the bias is not shrunk
    for _ in range(iterations):
        p = sigmoid(xb @ theta)
        grad = xb.T @ (sample * (p - y)) + reg * theta
        hess = (xb * (sample * p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``p = sigmoid(a * logit + c)`` fitted on held-out logits (lightly regularised)."""
    w, c = fit_logistic(logits[:, None], y, l2=1e-4)
    return float(w[0]), c


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins over all (row, label) probabilities."""
    p = probs.ravel()
    t = y.ravel().astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = index == b
        if sel.any():
            total += sel.sum() / len(p) * abs(p[sel].mean() - t[sel].mean())
    return float(total)


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(y & pred))
    denominator = 2 * tp + float(np.sum(~y & pred)) + float(np.sum(y & ~pred))
    return 2 * tp / denominator if denominator else 0.0


def choose_threshold(
    probs: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str] | None = None,
    grid: Sequence[float] = tuple(np.round(np.arange(0.10, 0.91, 0.05), 2)),
) -> float:
    """The grid threshold with the best smoothed F1 (mean over ``groups``, e.g. languages).

    Scoring the mean of per-language F1 keeps one language from buying the other's errors;
    averaging each point with its grid neighbours prefers a plateau to a lucky spike on a small
    dev file; ties go to the threshold nearest 0.5.
    """
    labels = np.asarray(groups) if groups is not None else np.zeros(len(y), dtype=object)

    def score(t: float) -> float:
        pred = probs >= t
        return float(np.mean([f1(y[labels == g], pred[labels == g]) for g in np.unique(labels)]))

    raw = [score(t) for t in grid]
    best: tuple[float, float, float] | None = None
    for i, t in enumerate(grid):
        value = float(np.mean(raw[max(0, i - 1) : i + 2]))
        key = (round(value, 6), -abs(t - 0.5), t)
        if best is None or key > best:
            best = key
    assert best is not None
    return float(best[2])
