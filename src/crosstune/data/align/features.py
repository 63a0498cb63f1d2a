"""Pair features for (target row, reference row) candidates, vectorised over index arrays of any shape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosstune.data.align.signals import RowSignals

FEATURES = (
    "bias", "len_prompt_logt", "len_output_logt", "len_prompt_z2", "len_output_z2",
    "nums_prompt_jaccard", "nums_prompt_both_none", "nums_prompt_one_none",
    "nums_output_jaccard", "nums_output_both_none", "nums_output_one_none", "nums_count_diff",
    "tokens_shared", "tokens_jaccard", "layout_prompt_dist", "layout_output_dist",
)
KNOTS = np.log1p(np.array([5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560], dtype=np.float32))


@dataclass(frozen=True)
class RefLengths:
    """Expected log length ratio and its spread for each reference row (prompt, output)."""

    mu_prompt: np.ndarray
    sd_prompt: np.ndarray
    mu_output: np.ndarray
    sd_output: np.ndarray


@dataclass(frozen=True)
class LengthModel:
    """log(target chars) - log(reference chars) of true pairs, as a function of the reference length.

    Short texts vary far more than long ones (Gale & Church model the variance as growing with length for the same
    reason), so mean and spread are fitted per length bin (knots) and interpolated.
    """

    mu_prompt: tuple = (0.0,) * len(KNOTS)
    sd_prompt: tuple = (0.35,) * len(KNOTS)
    mu_output: tuple = (0.0,) * len(KNOTS)
    sd_output: tuple = (0.35,) * len(KNOTS)

    @staticmethod
    def _fit_curve(ref_len: np.ndarray, diff: np.ndarray, sd_default: float) -> tuple[tuple, tuple]:
        mu, sd = [], []
        pos = np.clip(np.searchsorted(KNOTS, ref_len), 0, len(KNOTS) - 1)
        for k in range(len(KNOTS)):
            x = diff[pos == k]
            if x.size < 30:  # too few pairs: fall back to all of them
                x = diff
            med = float(np.median(x)) if x.size else 0.0
            mad = 1.4826 * float(np.median(np.abs(x - med))) if x.size else sd_default
            mu.append(round(med, 4))
            sd.append(round(max(mad, 0.05), 4))  # MAD: a few wrong pairs must not widen the model
        return tuple(mu), tuple(sd)

    @classmethod
    def fit(cls, tgt: RowSignals, ref: RowSignals, t: np.ndarray, r: np.ndarray) -> LengthModel:
        mp, sp = cls._fit_curve(ref.log_len_prompt[r], tgt.log_len_prompt[t] - ref.log_len_prompt[r], 0.35)
        mo, so = cls._fit_curve(ref.log_len_output[r], tgt.log_len_output[t] - ref.log_len_output[r], 0.35)
        return cls(mp, sp, mo, so)

    @classmethod
    def initial(cls, tgt: RowSignals, ref: RowSignals) -> LengthModel:
        # Before any alignment: the difference of medians is a fair first guess of the length ratio.
        n = len(KNOTS)
        mp = float(np.median(tgt.log_len_prompt) - np.median(ref.log_len_prompt)) if len(tgt) and len(ref) else 0.0
        mo = float(np.median(tgt.log_len_output) - np.median(ref.log_len_output)) if len(tgt) and len(ref) else 0.0
        return cls((mp,) * n, (0.35,) * n, (mo,) * n, (0.35,) * n)

    def per_row(self, ref: RowSignals) -> RefLengths:
        def curve(x, values):
            return np.interp(x, KNOTS, np.asarray(values, dtype=np.float32)).astype(np.float32)

        return RefLengths(curve(ref.log_len_prompt, self.mu_prompt), curve(ref.log_len_prompt, self.sd_prompt),
                          curve(ref.log_len_output, self.mu_output), curve(ref.log_len_output, self.sd_output))


def _popcount(a: np.ndarray, b: np.ndarray, op) -> np.ndarray:
    # Word by word: numpy reductions over a tiny last axis are slow, a couple of adds are not.
    return sum(np.bitwise_count(op(a[w], b[w])) for w in range(a.shape[0])).astype(np.float32)


def _jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter, union = _popcount(a, b, np.bitwise_and), _popcount(a, b, np.bitwise_or)
    return inter / np.maximum(union, 1)


def _l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).sum(0) / a.shape[0]


def feature_columns(tgt: RowSignals, ref: RowSignals, t, r, lengths: RefLengths) -> list[np.ndarray]:
    """One array per name in FEATURES for the pairs (t[k], r[k]); t and r are index arrays or equal-length slices."""
    zp = (tgt.log_len_prompt[t] - ref.log_len_prompt[r] - lengths.mu_prompt[r]) / lengths.sd_prompt[r]
    zo = (tgt.log_len_output[t] - ref.log_len_output[r] - lengths.mu_output[r]) / lengths.sd_output[r]
    zp, zo = zp * zp, zo * zo
    # log1p(z^2) is a Student-t log density: heavy tails, since a cleaned or re-written row can change its length.
    cols = [np.ones_like(zp), np.log1p(zp), np.log1p(zo), np.minimum(zp, 9.0), np.minimum(zo, 9.0)]
    for nt, nr, st, sr in ((tgt.n_nums_prompt, ref.n_nums_prompt, tgt.nums_prompt, ref.nums_prompt),
                           (tgt.n_nums_output, ref.n_nums_output, tgt.nums_output, ref.nums_output)):
        a, b = nt[t] > 0, nr[r] > 0
        cols += [_jaccard(st[:, t], sr[:, r]), (~a & ~b).astype(np.float32), (a ^ b).astype(np.float32)]
    n_t = tgt.n_nums_prompt[t] + tgt.n_nums_output[t]
    n_r = ref.n_nums_prompt[r] + ref.n_nums_output[r]
    cols.append(np.abs(np.log1p(n_t) - np.log1p(n_r)))
    cols.append(np.log1p(_popcount(tgt.tokens[:, t], ref.tokens[:, r], np.bitwise_and)))
    cols.append(_jaccard(tgt.tokens[:, t], ref.tokens[:, r]))
    cols.append(_l1(tgt.layout_prompt[:, t], ref.layout_prompt[:, r]))
    cols.append(_l1(tgt.layout_output[:, t], ref.layout_output[:, r]))
    return cols


def pair_features(tgt: RowSignals, ref: RowSignals, t, r, lengths: RefLengths) -> np.ndarray:
    """Feature matrix (pairs, len(FEATURES)), float32."""
    return np.stack(feature_columns(tgt, ref, t, r, lengths), axis=-1).astype(np.float32)


def pair_scores(tgt: RowSignals, ref: RowSignals, t, r, lengths: RefLengths, weights: np.ndarray) -> np.ndarray:
    """Log-odds per pair, without materialising the feature matrix."""
    cols = feature_columns(tgt, ref, t, r, lengths)
    total = np.zeros_like(cols[1])
    for w, c in zip(weights, cols):
        if w:
            total += np.float32(w) * c
    return total


# Hand-set log-odds weights for the first pass; `calibrate` refits them on the first pass's own alignment.
INITIAL_WEIGHTS = np.array([
    3.0, -1.0, -1.0, -0.2, -0.2,
    3.0, 0.0, -1.5,
    3.0, 0.0, -1.5, -1.0,
    1.0, 2.0, -2.0, -4.0,
], dtype=np.float32)
