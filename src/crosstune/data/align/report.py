"""Account for every target row (kept / low confidence / unmatched) and summarise confidences."""

from __future__ import annotations

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
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")
    return len(rows)


def confidence_histogram(alignment: Alignment) -> list[tuple[str, int]]:
    """Counts of matched pairs per confidence bin; the last bin includes 1.0."""
    conf = np.array([p.confidence for p in alignment.pairs], dtype=np.float64)
    counts, _ = np.histogram(conf, bins=np.array(HIST_EDGES))
    return [(f"[{lo:g}, {hi:g}{']' if hi == 1.0 else ')'}", int(n))
            for lo, hi, n in zip(HIST_EDGES[:-1], HIST_EDGES[1:], counts)]


def spread_sample(pairs: list, n: int, seed: int) -> list:
    """`n` pairs spread over the file: one random pair (seeded) from each of `n` equal consecutive strata."""
    if n >= len(pairs):
        return list(pairs)
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(pairs), n + 1).astype(int)
    return [pairs[int(rng.integers(lo, hi))] for lo, hi in zip(edges[:-1], edges[1:])]
