"""Account for every target row (kept / low confidence / unmatched) and summarise confidences."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from crosstune.data.align.core import Alignment

TSV_HEADER = ("target_index", "ref_index", "ref_id", "confidence", "status")
HIST_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)


def pair_rows(alignment: Alignment) -> list[tuple]:
    """One row per target row, in target order: matched pairs with their status, unmatched rows with blanks."""
    by_target = {p.target_index: p for p in alignment.pairs}
    rows = []
    for i in range(alignment.n_target):
        p = by_target.get(i)
        if p is None:
            rows.append((i, "", "", "", "unmatched"))
        else:
            status = "kept" if p.confidence >= alignment.min_confidence else "low_confidence"
            rows.append((i, p.ref_index, p.ref_id, f"{p.confidence:.6f}", status))
    return rows


def write_pairs_tsv(path: str | Path, alignment: Alignment) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = pair_rows(alignment)
    with open(p, "w", encoding="utf-8") as f:
        f.write("\t".join(TSV_HEADER) + "\n")
        f.writelines("\t".join(str(x) for x in row) + "\n" for row in rows)
    return len(rows)


def confidence_histogram(alignment: Alignment) -> list[tuple[str, int]]:
    """Counts of matched pairs per confidence bin; the last bin includes 1.0."""
    conf = np.array([p.confidence for p in alignment.pairs], dtype=np.float64)
    counts, _ = np.histogram(conf, bins=np.array(HIST_EDGES))
    return [(f"[{lo:g}, {hi:g}{']' if hi == 1.0 else ')'}", int(n))
            for (lo, hi), n in zip(itertools.pairwise(HIST_EDGES), counts)]


def spread_sample(pairs: list, n: int, seed: int, n_target: int) -> list:
    """About `n` pairs spread over the target file: in each of `n` equal slices of target rows, the first pair at
    or after a seeded random row. Keyed on target rows, so a threshold change only moves the picks it must."""
    rng = np.random.default_rng(seed)
    by_target = sorted(pairs, key=lambda p: p.target_index)
    starts = np.array([p.target_index for p in by_target])
    edges = np.linspace(0, n_target, n + 1).astype(int)
    picked = []
    for lo, hi in itertools.pairwise(edges):
        k = int(np.searchsorted(starts, rng.integers(lo, max(hi, lo + 1))))
        if k < len(by_target) and by_target[k].target_index < hi:
            picked.append(by_target[k])
    return picked
