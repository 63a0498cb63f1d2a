"""On-disk cache of alignments, keyed by the bytes of both inputs, how they are read, and the parameters."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from crosstune.data.align.core import AlignedPair, Alignment, AlignParams
from crosstune.hashing import json_sha256

SCORING_MODULES = ("signals.py", "features.py", "scoring.py", "dp.py", "core.py")


def algorithm_digest() -> str:
    """Hash of the aligner's own source: any change to the scoring invalidates old cache entries by itself."""
    h = hashlib.sha256()
    for name in SCORING_MODULES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def cache_key(reference: dict, target: dict, params: AlignParams) -> str:
    """`reference`/`target` describe a source: path digest plus format, prefix, language."""
    payload = {"algorithm": algorithm_digest(), "reference": reference, "target": target, "params": dataclasses.asdict(params)}
    return json_sha256(payload)[:24]


def cache_path(key: str) -> Path:
    from crosstune.models.loading import cache_dir

    return cache_dir() / "align" / f"{key}.json"


def save(path: Path, alignment: Alignment) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"n_reference": alignment.n_reference, "n_target": alignment.n_target,
            "calibration": alignment.calibration,
            "pairs": [[p.ref_id, p.ref_index, p.target_index, p.confidence] for p in alignment.pairs]}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


def load(path: Path, min_confidence: float) -> Alignment | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or damaged: recompute
    pairs = [AlignedPair(str(a), int(b), int(c), float(d)) for a, b, c, d in data["pairs"]]
    return Alignment(pairs, data["n_reference"], data["n_target"], min_confidence, data.get("calibration", {}))
