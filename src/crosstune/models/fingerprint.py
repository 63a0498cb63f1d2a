"""Model identity: a short content hash of a model's weights (or an adapter's), for caches and run folders.

Hashing 500 MB takes about a second; the digest of each file is memoized on (path, size, mtime) in the cache
folder, so later runs pay nothing. A hub id (not on disk) is fingerprinted by its name and revision string.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from crosstune.hashing import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
IDENTITY_FILES = ("config.json", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
                  "chat_template.jinja", "generation_config.json")


def _memo_path() -> Path:
    from crosstune.models.loading import cache_dir

    return cache_dir() / "fingerprints.json"


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, memoized on (resolved path, size, mtime_ns)."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = file_sha256(path, 1 << 22)
    memo[key] = digest
    try:  # best effort, atomic replace: a concurrent writer can only lose a memo entry, never corrupt it
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_name(f"{memo_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo), encoding="utf-8")
        tmp.replace(memo_file)
    except OSError:
        pass
    return digest


def model_fingerprint(path_or_id: str | Path) -> str:
    """`sha256:<16 hex>` over the weights and identity files of a model folder, a single file, or a hub id."""
    p = Path(str(path_or_id)).expanduser()
    h = hashlib.sha256()
    if p.is_file():
        h.update(file_digest(p).encode())
    elif p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name in IDENTITY_FILES))
        for f in files:
            h.update(f.name.encode() + b"\0" + file_digest(f).encode() + b"\n")
    else:
        h.update(f"hub:{path_or_id}".encode())
    return "sha256:" + h.hexdigest()[:16]
