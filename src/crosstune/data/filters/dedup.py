"""Duplicate filters: exact (all messages identical) and near (MinHash over character n-grams, with LSH bands).

Near duplicates use characters, not words, so Chinese (no spaces) works like English. The first row wins.
"""

from __future__ import annotations

import re

import numpy as np
from xxhash import xxh3_128_digest

from pydantic import Field

from crosstune.config import Fraction, Seed, StrictModel
from crosstune.data.blocks import Filter, Row
from crosstune.data.build_encode import _STR, escape_utf8
from crosstune.data.digests import DigestMap, StringList
from crosstune.schema import ROLES
from crosstune.errors import CrosstuneError

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_NON_WORD = re.compile(r"[\W_]+")


class ExactDedupConfig(StrictModel):
    enabled: bool = True


class NearDedupConfig(StrictModel):
    threshold: Fraction = 0.8  # estimated Jaccard similarity of n-gram sets
    ngram: int = Field(5, ge=1, le=1000)
    num_perm: int = Field(64, ge=1, le=4096)
    bands: int = Field(16, ge=1, le=4096)
    seed: Seed = 1  # fixed: the hash family, not the data order


def row_text(row: Row) -> str:
    if row.paired:
        return f"user\x1e{row.user}\x1fassistant\x1e{row.response}"
    return "\x1f".join(f"{m.role}\x1e{m.content}" for m in row.example.messages)


_ROLES = {role: escape_utf8(role) for role in ROLES}


def row_digest(row: Row) -> bytes:
    """Digest of all (role, content) pairs, each as a JSON string literal in UTF-8 (the escaped form is
    self-delimiting, so no two rows share the encoding by concatenation). A `PairRow` has its two contents in
    that form already: no text is encoded again per row."""
    if row.paired:
        return xxh3_128_digest(b"".join((b'"user"', row.e_user, b'"assistant"', row.e_response)))
    parts = []
    for m in row.example.messages:
        role = _ROLES.get(m.role)
        parts.append(escape_utf8(m.role) if role is None else role)
        parts.append(_STR(m.content).encode("utf-8", "surrogatepass"))
    return xxh3_128_digest(b"".join(parts))


class ExactDedup(Filter):
    """First row wins; rows are keyed by a 128-bit digest of their messages in a `DigestMap` (about 50 bytes of
    memory per kept row with its id, instead of the texts themselves)."""

    name = "exact_dedup"

    def __init__(self, cfg: ExactDedupConfig | None = None):
        super().__init__()
        self.seen = DigestMap()
        self.first_ids = StringList()
        self._kept = 0  # len(first_ids)

    def check(self, row: Row) -> tuple[str, str] | None:
        if row.paired:  # `row_digest`, inlined for CrossIn's ~200K rows
            key = xxh3_128_digest(b"".join((b'"user"', row.e_user, b'"assistant"', row.e_response)))
        else:
            key = row_digest(row)
        k = self.seen.setdefault(key, self._kept)
        if k is None:
            self._kept += 1
            self.first_ids.append(row.id)
            return None
        first = self.first_ids[k]
        return None if first == row.id else ("exact_duplicate", f"same as {first}")


def shingles(text: str, n: int) -> np.ndarray:
    """Hashes of the distinct character n-grams of the lower-cased text without spaces and punctuation."""
    norm = _NON_WORD.sub("", text.lower())
    cp = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cp) < n:
        cp = np.concatenate([cp, np.zeros(n - len(cp), dtype=np.uint64)])
    h = np.zeros(len(cp) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):  # polynomial rolling hash, wrapping mod 2^64
            h = h * np.uint64(1_000_003) + cp[j: len(cp) - n + 1 + j]
    return np.unique(h)


class NearDedup(Filter):
    name = "near_dedup"

    def __init__(self, cfg: NearDedupConfig):
        super().__init__()
        if cfg.num_perm % cfg.bands:
            raise CrosstuneError(f"near_dedup: num_perm {cfg.num_perm} must be a multiple of bands {cfg.bands}")
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        self.a = rng.integers(1, 2**63, size=(cfg.num_perm, 1), dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=(cfg.num_perm, 1), dtype=np.uint64)
        self.buckets: dict[bytes, str] = {}
        self.signatures: dict[str, np.ndarray] = {}

    def signature(self, text: str) -> np.ndarray:
        with np.errstate(over="ignore"):
            mixed = self.a * shingles(text, self.cfg.ngram)[None, :] + self.b
        return (mixed >> np.uint64(32)).min(axis=1).astype(np.uint32)

    def check(self, row: Row) -> tuple[str, str] | None:
        sig = self.signature(row_text(row))
        r = self.cfg.num_perm // self.cfg.bands
        keys = [bytes([band]) + sig[band * r:(band + 1) * r].tobytes() for band in range(self.cfg.bands)]
        for key in keys:
            other = self.buckets.get(key)
            if other is not None:
                sim = float(np.mean(self.signatures[other] == sig))
                if sim >= self.cfg.threshold:
                    return "near_duplicate", f"~{sim:.2f} similar to {other}"
        for key in keys:
            self.buckets.setdefault(key, row.id)
        self.signatures[row.id] = sig
        return None
