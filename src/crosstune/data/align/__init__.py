"""Align a translation that lost rows and ids to its reference (monotone banded DP on translation-robust signals).

    alignment = align_translation(reference_examples, target_examples)
    examples = load_aligned(reference_path, target_path, target_language="vi")  # cached on disk
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crosstune.data.align import cache
from crosstune.data.align.core import (
    DEFAULT_MIN_CONFIDENCE,
    AlignedPair,
    Alignment,
    AlignParams,
    align_translation,
)
from crosstune.data.io import read_examples
from crosstune.data.schema import Example
from crosstune.hashing import file_sha256
from crosstune.languages import normalize

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "AlignParams",
    "AlignedPair",
    "Alignment",
    "align_files",
    "align_translation",
    "load_aligned",
    "reidentify",
]


def align_files(reference_path: str | Path, target_path: str | Path, *, target_language: str,
                reference_format: str = "alpaca", reference_prefix: str = "en_", reference_language: str = "en",
                target_format: str = "prompt_response", min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                params: AlignParams | None = None, use_cache: bool = True) -> tuple[Alignment, list[Example]]:
    """Align two files (cached); returns the alignment and the target examples as read."""
    params = params or AlignParams()
    target_language = normalize(target_language)
    target = list(read_examples(target_path, target_format, language=target_language))
    key = cache.cache_key(
        {"sha256": file_sha256(reference_path), "format": reference_format, "prefix": reference_prefix},
        {"sha256": file_sha256(target_path), "format": target_format, "language": target_language}, params)
    path = cache.cache_path(key)
    alignment = cache.load(path, min_confidence) if use_cache else None
    if alignment is None or alignment.n_target != len(target):
        reference = list(read_examples(reference_path, reference_format, language=reference_language,
                                       prefix=reference_prefix))
        alignment = align_translation(reference, target, min_confidence=min_confidence, params=params)
        cache.save(path, alignment)
    return alignment, target


def reidentify(alignment: Alignment, target: Sequence[Example]) -> list[Example]:
    """The kept target examples, each carrying its reference id and alignment metadata."""
    out = []
    for p in alignment.kept:
        ex = target[p.target_index]
        meta = dict(ex.meta, align_confidence=p.confidence, target_index=p.target_index)
        out.append(Example(id=p.ref_id, messages=ex.messages, source=ex.source, meta=meta))
    return out


def load_aligned(reference_path: str | Path, target_path: str | Path, *, target_language: str,
                 reference_format: str = "alpaca", reference_prefix: str = "en_",
                 target_format: str = "prompt_response", min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[Example]:
    """The target's confidently aligned examples with reference ids (cached alignment; see `align_files`)."""
    alignment, target = align_files(reference_path, target_path, target_language=target_language,
                                    reference_format=reference_format, reference_prefix=reference_prefix,
                                    target_format=target_format, min_confidence=min_confidence)
    return reidentify(alignment, target)
