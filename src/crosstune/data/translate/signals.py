"""Quality signals per translated row, the thresholds that exclude a row, and their distributions for the manifest.

Signals: language ID of the output (`crosstune.data.langid`), length ratio (output / source characters over the
translated text), copy rate (share of translated characters that came back unchanged), preserved spans (every
number and protected span of the source is in the output) and, when asked, round-trip chrF (sacrebleu).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.translate.protect import missing_numbers, protected_spans


@dataclass
class RowSignals:
    lid: str | None = None
    lid_confidence: float = 0.0
    length_ratio: float | None = None
    copy_rate: float | None = None
    spans_ok: bool = True
    missing: list[str] = field(default_factory=list)
    fallbacks: int = 0
    units: int = 0
    round_trip_chrf: float | None = None
    source_chars: int = 0

    def to_dict(self) -> dict:
        return {"lid": self.lid, "lid_confidence": round(self.lid_confidence, 4),
                "length_ratio": _r(self.length_ratio), "copy_rate": _r(self.copy_rate), "spans_ok": self.spans_ok,
                "missing_spans": self.missing, "units": self.units, "fallbacks": self.fallbacks,
                "round_trip_chrf": _r(self.round_trip_chrf)}


def _r(x):
    return None if x is None else round(float(x), 4)


def measure_row(pairs: list[tuple[str, str, object]], pattern) -> RowSignals:
    """`pairs`: (source text, output text, TextResult) of the fields that were translated (not kept)."""
    s = RowSignals()
    src_chars = sum(len(a) for a, _, _ in pairs)
    s.source_chars = src_chars
    if src_chars:
        s.length_ratio = sum(len(b) for _, b, _ in pairs) / src_chars
    sent = sum(r.translated_chars for _, _, r in pairs)
    s.copy_rate = sum(r.copied_chars for _, _, r in pairs) / sent if sent else None
    s.units = sum(r.units for _, _, r in pairs)
    s.fallbacks = sum(r.fallbacks for _, _, r in pairs)
    for a, b, _ in pairs:
        lost = [x for x in protected_spans(a, pattern) if x not in b] + missing_numbers(a, b)
        s.missing += lost
    s.spans_ok = not s.missing
    return s


class LidScorer:
    """Detects the output language of many rows at once (memoized detector, candidates = source and target)."""

    def __init__(self, backend: str, source: str, target: str):
        self.detector = get_detector(backend, [source, target])
        self.target = target

    def apply(self, signals: list[RowSignals], texts: list[str]) -> None:
        for s, (tag, conf) in zip(signals, self.detector.detect_many(texts)):
            s.lid, s.lid_confidence = tag, conf


def round_trip_chrf(sources: list[str], back: list[str]) -> list[float]:
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    return [chrf.sentence_score(b, [a]).score for a, b in zip(sources, back)]


def verdict(s: RowSignals, source: str, target: str, cfg) -> tuple[str, str] | None:
    """The first threshold a row fails, as (reason, detail); None keeps it."""
    if s.lid is not None and s.lid_confidence >= cfg.min_langid_confidence and not same_base_language(s.lid, target):
        # Short Portuguese is often called Galician or Occitan: by default only the source language (text left
        # untranslated) excludes a row; `langid_exclude: any` excludes every other language too.
        if cfg.langid_exclude == "any" or same_base_language(s.lid, source):
            return "langid_mismatch", f"detected {s.lid} ({s.lid_confidence:.2f}), expected {target}"
    judged = s.source_chars >= cfg.ratio_min_chars
    if judged and s.length_ratio is not None:
        if cfg.min_length_ratio is not None and s.length_ratio < cfg.min_length_ratio:
            return "length_ratio_low", f"{s.length_ratio:.2f} < {cfg.min_length_ratio}"
        if cfg.max_length_ratio is not None and s.length_ratio > cfg.max_length_ratio:
            return "length_ratio_high", f"{s.length_ratio:.2f} > {cfg.max_length_ratio}"
    if (cfg.max_copy_rate is not None and s.copy_rate is not None and s.source_chars >= cfg.ratio_copy_min_chars
            and s.copy_rate > cfg.max_copy_rate):
        return "copied", f"copy rate {s.copy_rate:.2f} > {cfg.max_copy_rate}"
    if cfg.require_spans and not s.spans_ok:
        return "spans_lost", "missing: " + ", ".join(s.missing[:5])
    if (cfg.min_round_trip_chrf is not None and s.round_trip_chrf is not None
            and s.round_trip_chrf < cfg.min_round_trip_chrf):
        return "round_trip_chrf", f"{s.round_trip_chrf:.1f} < {cfg.min_round_trip_chrf}"
    return None


def distribution(values: list[float]) -> dict:
    vals = np.array([v for v in values if v is not None], dtype=float)
    if not len(vals):
        return {"n": 0}
    q = np.percentile(vals, [5, 25, 50, 75, 95])
    return {"n": int(len(vals)), "mean": round(float(vals.mean()), 4), "min": round(float(vals.min()), 4),
            "p5": round(float(q[0]), 4), "p25": round(float(q[1]), 4), "median": round(float(q[2]), 4),
            "p75": round(float(q[3]), 4), "p95": round(float(q[4]), 4), "max": round(float(vals.max()), 4)}


def summarize(signals: list[RowSignals], target: str) -> dict:
    """Distributions of every signal over the rows of one language (before thresholds)."""
    lids = Counter(s.lid or "undetermined" for s in signals)
    return {
        "rows": len(signals),
        "lid": dict(sorted(lids.items())),
        "lid_agreement": round(sum(same_base_language(s.lid, target) for s in signals) / len(signals), 4)
        if signals else None,
        "length_ratio": distribution([s.length_ratio for s in signals]),
        "copy_rate": distribution([s.copy_rate for s in signals]),
        "spans_ok_rate": round(sum(s.spans_ok for s in signals) / len(signals), 4) if signals else None,
        "rows_with_fallback": sum(s.fallbacks > 0 for s in signals),
        "round_trip_chrf": distribution([s.round_trip_chrf for s in signals]),
    }
