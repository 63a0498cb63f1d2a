"""Band score matrix and its calibration: a logistic regression refit on the first pass's own alignment."""

from __future__ import annotations

import numpy as np

from crosstune.data.align.dp import NEG, Band
from crosstune.data.align.features import LengthModel, pair_scores
from crosstune.data.align.signals import RowSignals


def score_band(tgt: RowSignals, ref: RowSignals, band: Band, lengths: LengthModel, weights: np.ndarray) -> np.ndarray:
    """S[i, k] = log-likelihood ratio that target i translates reference i + band.lo + k; NEG outside the data."""
    n, m = len(tgt), len(ref)
    per_row = lengths.per_row(ref)
    diagonals = np.full((band.offsets.size, n), NEG, dtype=np.float32)
    for k, d in enumerate(band.offsets):
        # One diagonal at a time: target rows t and reference rows t + d are both contiguous slices (no gather).
        lo, hi = max(0, -d), min(n, m - d)
        if hi > lo:
            diagonals[k, lo:hi] = pair_scores(tgt, ref, slice(lo, hi), slice(lo + d, hi + d), per_row, weights)
    return np.ascontiguousarray(diagonals.T)  # the DP walks target rows


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25) -> np.ndarray:
    """Class-balanced L2 logistic regression by Newton steps; balanced so the logit is a likelihood ratio."""
    w_pos = 0.5 / max(y.mean(), 1e-9)
    w_neg = 0.5 / max(1 - y.mean(), 1e-9)
    sw = np.where(y > 0, w_pos, w_neg)
    x = x.astype(np.float64)
    w = np.zeros(x.shape[1])
    reg = l2 * np.eye(x.shape[1])
    reg[0, 0] = 0.0  # no penalty on the bias
    for _ in range(iters):
        # einsum, not BLAS matmul: multi-threaded BLAS busy-waits badly on a shared, oversubscribed machine.
        p = 1.0 / (1.0 + np.exp(-np.clip(np.einsum("nk,k->n", x, w), -30, 30)))
        grad = np.einsum("nk,n->k", x, sw * (p - y)) + reg @ w
        hess = np.einsum("nk,nj->kj", x * (sw * p * (1 - p))[:, None], x) + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w.astype(np.float32)


def training_pairs(pairs: np.ndarray, band: Band, n_reference: int, seed: int, max_positives: int = 10_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positives = trusted path pairs; negatives = the same target row against neighbours and random band rows."""
    rng = np.random.default_rng(seed)
    if len(pairs) > max_positives:  # a seeded subsample keeps the fit well under a second
        pairs = pairs[np.sort(rng.choice(len(pairs), max_positives, replace=False))]
    t, r = pairs[:, 0], pairs[:, 1]
    near = np.array([-3, -2, -1, 1, 2, 3])
    neg_t = np.concatenate([np.repeat(t, near.size), np.repeat(t, 2)])
    neg_r = np.concatenate([(r[:, None] + near[None, :]).ravel(),
                            np.repeat(t, 2) + rng.integers(band.lo, band.hi + 1, size=2 * t.size)])
    ok = (neg_r >= 0) & (neg_r < n_reference)
    neg_t, neg_r = neg_t[ok], neg_r[ok]
    all_t = np.concatenate([t, neg_t])
    all_r = np.concatenate([r, neg_r])
    y = np.concatenate([np.ones(t.size), np.zeros(neg_t.size)])
    return all_t, all_r, y
