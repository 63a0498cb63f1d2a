"""Banded monotone alignment as a pair-HMM: Viterbi path plus forward-backward match posteriors.

State (i, j) = i target rows and j reference rows consumed. Moves: match target i with reference j (score
S[i, j - i], a log-likelihood ratio), skip a reference row (cost `skip_ref`), skip a target row (cost
`skip_target`). Only offsets d = j - i in the band [lo, hi] are kept, so each step is one numpy vector over the
band; skipping references within a step is a cumulative max (Viterbi) or cumulative logaddexp (forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEG = -1e30  # "impossible" that stays finite, so sums never turn into nan


@dataclass(frozen=True)
class Band:
    lo: int  # smallest offset j - i
    hi: int
    n_target: int
    n_reference: int

    @property
    def offsets(self) -> np.ndarray:
        return np.arange(self.lo, self.hi + 1)

    @classmethod
    def around(cls, n_target: int, n_reference: int, slack: int) -> Band:
        # Offsets grow by one per dropped target row; extra target rows (shrinking it) are rare, so a small margin.
        return cls(lo=min(0, n_reference - n_target) - min(slack, 20), hi=max(0, n_reference - n_target) + slack,
                   n_target=n_target, n_reference=n_reference)

    def valid(self, i: int) -> np.ndarray:
        """Mask of offsets d with 0 <= i + d <= n_reference (state i has consumed i + d reference rows)."""
        j = i + self.offsets
        return (j >= 0) & (j <= self.n_reference)

    def clear_invalid(self, v: np.ndarray, i: int) -> np.ndarray:
        """`v` with the offsets outside the data set to NEG, in place (slices: this runs once per row)."""
        v[:max(0, -i - self.lo)] = NEG
        v[max(0, self.n_reference - i - self.lo + 1):] = NEG
        return v


def _start(band: Band, skip_ref: float) -> np.ndarray:
    d = band.offsets.astype(np.float64)
    return np.where(d >= 0, -skip_ref * d, NEG)


def _end(band: Band) -> np.ndarray:
    # Paths end in state (n_target, n_reference); trailing reference skips are already inside the last row.
    return np.where(band.offsets == band.n_reference - band.n_target, 0.0, NEG)


def _shift_up(v: np.ndarray) -> np.ndarray:
    """v[d + 1] at position d (target skip: from offset d + 1 at the previous row)."""
    return np.concatenate([v[1:], [NEG]])


def viterbi(scores: np.ndarray, band: Band, skip_ref: float, skip_target: float) -> list[tuple[int, int]]:
    """Best monotone path; returns (target_index, reference_index) matches in order."""
    n = band.n_target
    ramp = skip_ref * band.offsets.astype(np.float64)
    from_left = np.zeros((n + 1, ramp.size), dtype=bool)
    matched = np.zeros((n + 1, ramp.size), dtype=bool)
    v = _start(band, skip_ref)
    for i in range(1, n + 1):
        match = v + scores[i - 1]
        skip = _shift_up(v) - skip_target
        h = np.maximum(match, skip)
        matched[i] = match >= skip
        x = h + ramp
        c = np.maximum.accumulate(x)
        from_left[i] = c > x
        v = band.clear_invalid(c - ramp, i)
    k = int(np.argmax(v + _end(band)))
    pairs = []
    i = n
    while i > 0:
        if from_left[i, k]:
            k -= 1
        elif matched[i, k]:
            pairs.append((i - 1, i - 1 + int(band.offsets[k])))
            i -= 1
        else:
            i, k = i - 1, k + 1
    return pairs[::-1]


def _logcumsumexp(x: np.ndarray) -> np.ndarray:
    # 4x faster than np.logaddexp.accumulate. Prefix sums that underflow (more than ~690 nats below the row's
    # maximum) come out as "max - 690", a weight of e^-690 relative to the best state: irrelevant to posteriors.
    m = x.max()
    return np.log(np.maximum(np.cumsum(np.exp(x - m)), 1e-300)) + m


def match_posteriors(scores: np.ndarray, band: Band, skip_ref: float, skip_target: float) -> np.ndarray:
    """P(target i is matched to reference i + d | all rows) for every band cell, float32 (n_target, width)."""
    n = band.n_target
    ramp = skip_ref * band.offsets.astype(np.float64)
    fwd = np.empty((n + 1, ramp.size), dtype=np.float32)
    f = _start(band, skip_ref)
    fwd[0] = f
    for i in range(1, n + 1):
        h = np.logaddexp(f + scores[i - 1], _shift_up(f) - skip_target)
        f = band.clear_invalid(_logcumsumexp(h + ramp) - ramp, i)
        fwd[i] = f
    log_z = float(np.logaddexp.reduce(f + _end(band)))
    rest = band.n_reference - band.n_target - band.offsets  # last row: skip the remaining references
    b = np.where((rest >= 0) & band.valid(n), -skip_ref * rest, NEG)
    post = np.empty((n, ramp.size), dtype=np.float32)
    for i in range(n - 1, -1, -1):
        match = scores[i] + b
        post[i] = np.exp(np.minimum(fwd[i] + match - log_z, 0.0))
        skip = np.concatenate([[NEG], b[:-1]]) - skip_target  # to offset d - 1 at row i + 1
        k = np.logaddexp(match, skip) - ramp
        b = band.clear_invalid(_logcumsumexp(k[::-1])[::-1] + ramp, i)
    return post
