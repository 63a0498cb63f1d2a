"""Segment translations in the one call cache: each segment is translated once per (engine, model, languages, text).

Engines that do not cache their own calls are wrapped in `SegmentCache`: keys come from
`crosstune.models.cache.request_key(fingerprint, "translate", {...})`, each result is committed as it arrives (about
0.1 ms a row), so a killed run keeps everything that was done and a rerun sends only what is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from crosstune.models.cache import CallCache, request_key


class SegmentCache:
    def __init__(self, engine, cache: CallCache, flush_every: int = 1, flush_seconds: float = 2.0):
        self.engine = engine
        self.cache = cache
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.calls = 0  # segments sent to the engine
        self.hits = 0  # segments answered from the cache
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.engine.fingerprint()
        return self._fingerprint

    def key(self, text: str, source: str, target: str) -> str:
        return request_key(self.fingerprint, "translate", {
            "engine": self.engine.kind, "model": self.engine.model, "settings": self.engine.settings(),
            "source": source, "target": target, "text": text})

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]:
        """(index, translation) for every text: cached ones first, then the engine's as they come back."""
        keys = [self.key(t, source, target) for t in texts]
        found = self.cache.get_many(keys)
        todo = []
        for i, k in enumerate(keys):
            if k in found:
                self.hits += 1
                yield i, found[k]
            else:
                todo.append(i)
        if not todo:
            return
        pending: dict[str, str] = {}
        last = time.monotonic()
        try:
            for j, out in self.engine.translate_iter([texts[i] for i in todo], source, target):
                self.calls += 1
                i = todo[j]
                pending[keys[i]] = out
                now = time.monotonic()
                if len(pending) >= self.flush_every or now - last > self.flush_seconds:
                    self.cache.put_many(pending, "translate")
                    pending, last = {}, now
                yield i, out
        finally:
            self.cache.put_many(pending, "translate")
