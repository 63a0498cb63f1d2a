"""Content digests, one place: SHA-256 of a file's bytes and of a JSON-able value (keys sorted).

What these digests key (experiment stages, caches, resume checks, manifests) is persisted, so each caller keeps
the exact JSON form it always hashed (`ascii`, `default`); the digest of the same value never changes.
(`crosstune.data.digests` is another thing: fast 128-bit digests of texts for deduplication.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def json_sha256(value: Any, *, ascii: bool = True, default: Callable | None = None) -> str:
    """Hex SHA-256 of `json.dumps(value, sort_keys=True, ensure_ascii=ascii, default=default)` (UTF-8)."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=ascii, default=default)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
