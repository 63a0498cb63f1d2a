"""The one cache for model calls: (model fingerprint, request kind, request, settings) -> result, in SQLite.

Generation, translation, judging and instruction writing all go through `CachedBackend`, so a rerun makes no new
calls, a killed run loses at most the results that had not come back yet, and a changed setting (any field of the
request, or another model) is a different key and never reuses a stale output. SQLite in WAL mode is safe for
several processes writing at once. `CachedBackend.calls` counts the requests that reached the backend.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult

SCHEMA_VERSION = 1


def default_cache_path() -> Path:
    from crosstune.models.loading import cache_dir

    return cache_dir() / "calls.sqlite"


def request_key(fingerprint: str, kind: str, request: Any) -> str:
    """A stable content hash of one request; dataclass requests are hashed field by field."""
    payload = asdict(request) if is_dataclass(request) else request
    blob = json.dumps([SCHEMA_VERSION, fingerprint, kind, payload], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    """A key -> JSON value store in one SQLite file (WAL; safe under concurrent writers)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
        self._init_schema()

    def _init_schema(self, patience: float = 60.0) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once
        # (without its busy timeout) when another process is doing the same: retry with backoff.
        deadline, wait = time.monotonic() + patience, 0.01
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                                 "kind TEXT, created REAL)")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(wait)
                wait = min(wait * 2, 0.5)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._db.execute(f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
            found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, items: dict[str, Any], kind: str = "") -> None:
        if not items:
            return
        now = time.time()
        rows = [(k, json.dumps(v, ensure_ascii=False), kind, now) for k, v in items.items()]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO calls (key, value, kind, created) VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _iter_results(backend, method: str, requests: list) -> Iterator[tuple[int, Any]]:
    """(index, result) pairs as they complete: `<method>_iter` when the backend streams them, else the batch call."""
    streaming = getattr(backend, f"{method}_iter", None)
    if streaming is not None:
        yield from streaming(requests)
    else:
        yield from enumerate(getattr(backend, method)(requests))


class CachedBackend:
    """Wraps any backend (same two request kinds); only cache misses reach it, and each result is committed as it
    arrives (`flush_every` > 1 batches commits, for bulk work where a kill may lose that many), so an exception or
    a kill keeps everything already done."""

    def __init__(self, backend, cache: CallCache | None = None, fingerprint: str | None = None,
                 flush_every: int = 1):
        self.backend = backend
        self.cache = cache if cache is not None else CallCache()  # an empty cache is falsy (__len__)
        self.fingerprint = fingerprint or getattr(backend, "fingerprint", None) or backend.name
        self.name = getattr(backend, "name", "backend")
        self.flush_every = flush_every
        self.calls = 0  # requests sent to the backend
        self.hits = 0  # requests answered from the cache

    def __getattr__(self, attr):  # tokenizer, batch_size, ... of the wrapped backend
        return getattr(self.backend, attr)

    def _run(self, kind: str, requests: list, encode, decode) -> list:
        keys = [request_key(self.fingerprint, kind, r) for r in requests]
        found = self.cache.get_many(keys)
        results: list = [decode(found[k]) if k in found else None for k in keys]
        miss_keys = list(dict.fromkeys(k for k in keys if k not in found))
        self.hits += len(requests) - sum(k not in found for k in keys)
        if miss_keys:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            todo = [requests[first[k]] for k in miss_keys]
            pending: dict[str, Any] = {}
            try:
                for j, result in _iter_results(self.backend, kind, todo):
                    self.calls += 1
                    pending[miss_keys[j]] = encode(result)
                    if len(pending) >= self.flush_every:
                        self.cache.put_many(pending, kind)
                        pending = {}
            finally:
                self.cache.put_many(pending, kind)
            fresh = self.cache.get_many(miss_keys)
            results = [decode(fresh[k]) if r is None else r for r, k in zip(results, keys)]
        return results

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        return self._run("generate", requests, lambda t: t, lambda v: v)

    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        return self._run("loglikelihood", requests, lambda r: [r.logprob, r.is_greedy],
                         lambda v: LoglikResult(float(v[0]), bool(v[1])))
