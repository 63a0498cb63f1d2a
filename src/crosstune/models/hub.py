"""Hub ids on a machine that may be offline: the local Hugging Face cache first, and a clear error instead of
transformers' retries (about a minute of them, then a misleading message) when the Hub cannot be reached."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from crosstune.errors import CrosstuneError

PROBE_SECONDS = 3.0  # one TCP connect to the Hub; a missing DNS answer fails at once


def env_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to a true value."""
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable() -> bool:
    """Whether a TCP connection to the Hub (HF_ENDPOINT, else huggingface.co) opens within PROBE_SECONDS (asked
    once per process and endpoint)."""
    return _reachable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")


@functools.lru_cache(maxsize=None)
def _reachable(endpoint: str) -> bool:
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname or "huggingface.co",
                                       url.port or (80 if url.scheme == "http" else 443)), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def cached_snapshot(repo_id: str) -> Path | None:
    """The local cache's folder for `repo_id` (its main revision), when it holds the model's config.json."""
    from huggingface_hub import try_to_load_from_cache

    cache = os.environ.get("HF_HUB_CACHE") or (Path(os.environ["HF_HOME"]) / "hub" if os.environ.get("HF_HOME")
                                               else None)
    try:
        hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    except ValueError:  # not a valid repo id
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def resolve_hub_id(repo_id: str) -> str:
    """A hub id for `from_pretrained`: offline, its cached folder (no network calls at all), or a clear error
    when it is not cached; online, the id itself (transformers fetches or updates it)."""
    offline = env_offline() or not hub_reachable()
    if not offline:
        return repo_id
    snapshot = cached_snapshot(repo_id)
    if snapshot is not None:
        return str(snapshot)
    why = "HF_HUB_OFFLINE is set" if env_offline() else "no network: the Hub did not answer"
    raise CrosstuneError(f"model {repo_id!r}: not found: not a local folder or file, not in the local Hugging Face "
                         f"cache, and the machine is offline ({why}), so the Hub cannot be asked; pass 'default', "
                         "a HF model folder or a .gguf file, or run once online to cache it")
