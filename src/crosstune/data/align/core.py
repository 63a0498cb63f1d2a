"""`align_translation`: two passes of banded DP, the second with scores calibrated on the first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crosstune.data.align.dp import Band, match_posteriors, viterbi
from crosstune.data.align.features import INITIAL_WEIGHTS, LengthModel, pair_features
from crosstune.data.align.scoring import fit_logistic, score_band, training_pairs
from crosstune.data.align.signals import copied_vocabulary, row_signals, token_sets
from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError

DEFAULT_MIN_CONFIDENCE = 0.99  # hand check: 4 of 40 kept pairs in [0.9, 0.99) were the wrong row, 0 of 60 above
DEFAULT_BAND_SLACK = 200
MAX_BAND_CELLS = 150_000_000  # ~4 bytes x 4 arrays each: keeps the peak near 2.5 GB


@dataclass(frozen=True)
class AlignParams:
    """Everything that changes the result (and so the cache key)."""

    band_slack: int = DEFAULT_BAND_SLACK  # offsets beyond len(reference) - len(target) that are searched
    calibration_passes: int = 1  # a second pass changed 7 of 51k rows, all below the default threshold
    trusted_score: float = 2.0  # pairs between two neighbours above this log-odds train the calibration
    seed: int = 0


@dataclass(frozen=True)
class AlignedPair:
    ref_id: str
    ref_index: int
    target_index: int
    confidence: float  # posterior probability of this match given all rows (forward-backward)


@dataclass
class Alignment:
    pairs: list[AlignedPair]
    n_reference: int
    n_target: int
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    calibration: dict = field(default_factory=dict)

    @property
    def kept(self) -> list[AlignedPair]:
        return [p for p in self.pairs if p.confidence >= self.min_confidence]

    @property
    def unmatched_targets(self) -> list[int]:
        matched = {p.target_index for p in self.pairs}
        return [i for i in range(self.n_target) if i not in matched]

    @property
    def stats(self) -> dict:
        conf = np.array([p.confidence for p in self.pairs])
        kept = int((conf >= self.min_confidence).sum())
        return {"reference_rows": self.n_reference, "target_rows": self.n_target, "aligned": len(self.pairs),
                "kept": kept, "low_confidence": len(self.pairs) - kept,
                "unmatched_target": self.n_target - len(self.pairs),
                "skipped_reference": self.n_reference - len(self.pairs),
                "mean_confidence": float(conf.mean()) if conf.size else 0.0,
                "min_confidence": self.min_confidence}


def _skip_costs(n_pairs: int, n_target: int, n_reference: int) -> tuple[float, float]:
    # -log of the observed skip rates (with a floor), so the DP's priors come from the data.
    ref_rate = max(n_reference - n_pairs, 1) / max(n_reference, 1)
    tgt_rate = max(n_target - n_pairs, 1) / max(n_target, 1)
    return float(np.clip(-np.log(ref_rate), 1.0, 12.0)), float(np.clip(-np.log(tgt_rate), 2.0, 12.0))


def _trusted_pairs(path: np.ndarray, scores: np.ndarray, band: Band, min_score: float) -> np.ndarray:
    """Path pairs whose both neighbours on the path are diagonal and well scored.

    Chosen by their context, not their own score, so the calibration still sees true pairs with odd features
    (a short answer, a rewritten instruction) instead of only textbook ones.
    """
    if len(path) < 3:
        return path[:0]
    s = scores[path[:, 0], path[:, 1] - path[:, 0] - band.lo]
    diagonal = np.all(np.diff(path, axis=0) == 1, axis=1)  # pair k -> k+1 steps (1, 1)
    inner = diagonal[:-1] & diagonal[1:] & (s[:-2] > min_score) & (s[2:] > min_score)
    return path[1:-1][inner]


def align_translation(reference: Sequence[Example], target: Sequence[Example], *,
                      min_confidence: float = DEFAULT_MIN_CONFIDENCE, params: AlignParams | None = None) -> Alignment:
    """Monotone alignment of `target` (a translation that lost rows) to `reference`, with a confidence per pair."""
    params = params or AlignParams()
    ref_tokens, tgt_tokens = token_sets(reference), token_sets(target)
    vocab = copied_vocabulary(ref_tokens, tgt_tokens)
    ref, tgt = row_signals(reference, ref_tokens, vocab), row_signals(target, tgt_tokens, vocab)
    band = Band.around(len(target), len(reference), params.band_slack)
    if len(target) * band.offsets.size > MAX_BAND_CELLS:
        raise CrosstuneError(
            f"cannot align {len(target):,} target rows to {len(reference):,} reference rows: the offsets to search "
            f"({band.lo}..{band.hi}) make a band of {len(target) * band.offsets.size:,} cells (limit "
            f"{MAX_BAND_CELLS:,}); is this the right reference? Otherwise align matching slices of both files")
    lengths, weights = LengthModel.initial(tgt, ref), INITIAL_WEIGHTS
    skip_ref, skip_target = 4.0, 6.0
    for _ in range(params.calibration_passes):
        scores = score_band(tgt, ref, band, lengths, weights)
        path = np.array(viterbi(scores, band, skip_ref, skip_target), dtype=np.int64).reshape(-1, 2)
        trusted = _trusted_pairs(path, scores, band, params.trusted_score)
        if len(trusted) < 20:  # too few rows to fit a calibration: keep the hand-set scores
            break
        skip_ref, skip_target = _skip_costs(len(path), len(target), len(reference))
        lengths = LengthModel.fit(tgt, ref, trusted[:, 0], trusted[:, 1])
        t, r, y = training_pairs(trusted, band, len(reference), params.seed)
        weights = fit_logistic(pair_features(tgt, ref, t, r, lengths.per_row(ref)), y)
    scores = score_band(tgt, ref, band, lengths, weights)
    path = viterbi(scores, band, skip_ref, skip_target)
    post = match_posteriors(scores, band, skip_ref, skip_target)
    pairs = [AlignedPair(reference[r].id, r, t, round(float(post[t, r - t - band.lo]), 6)) for t, r in path]
    calibration = {"length": lengths.__dict__, "weights": [round(float(w), 4) for w in weights],
                   "skip_ref": skip_ref, "skip_target": skip_target, "band": [band.lo, band.hi]}
    return Alignment(pairs, len(reference), len(target), min_confidence, calibration)
