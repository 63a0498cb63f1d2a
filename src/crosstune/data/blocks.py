"""Pipeline blocks, as in datatrove: each block is a generator over rows that keeps counters, and every row a
filter drops goes to an exclusion sink with its reason (never silently).

    sink = ExclusionSink()
    kept = list(run_blocks(filters, recipe_rows, sink))  # or: rows = block.run(rows, sink) per block

`run_blocks` gives the same rows, counters and exclusions in the same order as chaining `block.run`, but runs
each stretch of plain filters (and the batch filter ending it) as one loop, not one generator per block.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from crosstune.data.build_encode import _STR
from crosstune.data.io import dumps_row
from crosstune.data.schema import Example


@dataclass(slots=True)
class Row:
    """An output example plus the raw texts the language-ID filter verifies: (side, text, declared language).
    Tags and directives are not in `checks`, so they cannot sway the detector.

    `line` is the row's output line (JSON text, newline-terminated; str, or UTF-8 bytes) when its recipe wrote
    it from pre-escaped pieces (CrossIn); the writer then uses it instead of encoding `example`. A block that
    changes `example` must set `line` to None. `id` and `key` (mode, instruction language, response language) are what the pipeline
    itself reads of a row; `PairRow` has them without building an `Example`."""

    example: Example
    checks: tuple[tuple[str, str, str], ...] = ()
    line: str | bytes | None = None

    paired: ClassVar[bool] = False  # a `PairRow`: `user` and `response` hold the two messages' contents

    @property
    def id(self) -> str:
        return self.example.id

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.example.meta
        return meta["mode"], meta["instruction_language"], meta["response_language"]


class PairRow(Row):
    """A (user, assistant) row whose recipe wrote its output `line` (UTF-8; CrossIn's ~200K rows): the built-in
    filters, the counters and the writer read its plain fields, and its `example` is parsed from `line` only if a block
    asks for it (a custom filter), so the common path builds no `Example`, `Message`s or meta dicts. The line is
    the row, so the parsed example is exactly what would be written."""

    __slots__ = ("id", "user", "response", "key", "e_user", "e_response", "_example")
    paired = True

    def __init__(self, row_id: str, user: str, response: str, key: tuple[str, str, str],
                 checks: tuple[tuple[str, str, str], ...], line: bytes, e_user: bytes, e_response: bytes):
        """`e_user`, `e_response`: the two contents as JSON string literals in UTF-8, as in `line`."""
        self.id, self.user, self.response, self.key = row_id, user, response, key
        self.checks, self.line, self.e_user, self.e_response = checks, line, e_user, e_response
        self._example = None

    @property
    def example(self) -> Example:
        ex = self._example
        if ex is None:
            ex = self._example = Example.from_dict(json.loads(self.line))
        return ex

    @example.setter
    def example(self, ex: Example) -> None:  # a block replacing the example also sets `line = None`
        self._example = ex


@dataclass
class Exclusion:
    id: str
    reason: str
    block: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "reason": self.reason, "block": self.block, "detail": self.detail}


class ExclusionSink:
    """Dropped rows in pipeline order, one JSON line each: streamed to `path` as they come (a build), or kept in
    `items` when no path is given (tests, small uses; `write` saves them)."""

    def __init__(self, path=None):
        self.items: list[Exclusion] = []
        self.n = 0
        self._counts: Counter = Counter()
        self._file = open(path, "w", encoding="utf-8", buffering=1 << 20) if path is not None else None

    def add(self, row_id: str, reason: str, block: str, detail: str = "") -> None:
        self.n += 1
        self._counts[block, reason] += 1
        if self._file is not None:
            if type(row_id) is type(reason) is type(block) is type(detail) is str:  # `dumps_row`'s bytes, no dict
                S = _STR
                self._file.write(f'{{"id": {S(row_id)}, "reason": {S(reason)}, "block": {S(block)}, '
                                 f'"detail": {S(detail)}}}\n')
            else:
                self._file.write(dumps_row({"id": row_id, "reason": reason, "block": block, "detail": detail}) + "\n")
        else:
            self.items.append(Exclusion(row_id, reason, block, detail))

    def counts(self) -> dict[str, int]:
        return dict(sorted((f"{b}:{r}", n) for (b, r), n in self._counts.items()))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, path) -> int:
        with open(path, "w", encoding="utf-8") as f:
            for e in self.items:
                f.write(dumps_row(e.to_dict()) + "\n")
        return len(self.items)


class Block:
    """A step `run(rows, sink) -> rows` with counters: rows in, out, and per drop reason in `stats`."""

    name = "block"

    def __init__(self) -> None:
        self.stats: Counter = Counter()
        self.n_in = self.n_out = 0  # plain ints: a Counter update per row is measurable at 200K rows

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        raise NotImplementedError

    def report(self) -> dict:
        return dict(sorted({**self.stats, "in": self.n_in, "out": self.n_out}.items()))

    def close(self) -> None:
        """Release what the block started (worker processes); its counters stay readable."""


class Filter(Block):
    """Keep or drop one row at a time: `check(row)` returns None to keep, or `(reason, detail)` to drop."""

    def check(self, row: Row) -> tuple[str, str] | None:
        raise NotImplementedError

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        check = self.check
        for row in rows:
            self.n_in += 1
            verdict = check(row)
            if verdict is None:
                self.n_out += 1
                yield row
            else:
                reason, detail = verdict
                self.stats[f"dropped:{reason}"] += 1
                sink.add(row.id, reason, self.name, detail)


class BatchFilter(Filter):
    """A filter that prepares a batch at once (e.g. language ID), then checks rows one by one."""

    batch_size = 1024  # small enough that a fixed-budget build does not pull far past its quota

    def feed(self, row: Row) -> None:
        """Called with each row as it joins the batch, before `prepare(batch)`, so the filter may start
        preparing early (language ID sends texts to worker processes). It must not change what `prepare` and
        `check` decide. A filter that defines it relies on being fed every row of a batch."""

    overlaps = False  # True: with `seal`/`ready`, later batches may be gathered before one is prepared

    def seal(self, batch: list[Row]) -> bool:
        """`batch` is complete; with `overlaps`, the filter may prepare it elsewhere while later batches are
        gathered, and returns whether it can take the next batch before the sealed ones are prepared."""
        return False

    def ready(self) -> bool:
        """The oldest sealed batch can be prepared now without waiting."""
        return True

    def prepare(self, batch: list[Row]) -> None:
        raise NotImplementedError

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        batch: list[Row] = []
        feed = self.feed
        for row in rows:
            batch.append(row)
            feed(row)
            if len(batch) >= self.batch_size:
                self.prepare(batch)
                yield from super().run(batch, sink)
                batch = []
        if batch:
            self.prepare(batch)
            yield from super().run(batch, sink)


class Quota(Block):
    """Keeps the first `quotas[key]` rows per key (the response language) and stops pulling rows once every
    quota is full, so a fixed-budget recipe refills what the filters dropped from its candidate stream.
    Surplus candidates of an already full key are unused, not excluded: they were never part of the mix."""

    name = "quota"

    def __init__(self, quotas: dict[str, int]):
        super().__init__()
        self.quotas = dict(quotas)
        self.filled: Counter = Counter()

    @staticmethod
    def key(row: Row) -> str:
        return row.key[2]

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        open_keys = {k for k, q in self.quotas.items() if q > 0}
        if not open_keys:
            return
        for row in rows:
            self.n_in += 1
            key = self.key(row)
            if key not in open_keys:
                self.stats["surplus_unused"] += 1
                continue
            self.filled[key] += 1
            self.n_out += 1
            yield row
            if self.filled[key] >= self.quotas[key]:
                open_keys.discard(key)
                if not open_keys:
                    return

    def shortfall(self) -> dict[str, str]:
        return {k: f"{self.filled[k]}/{q}" for k, q in self.quotas.items() if self.filled[k] < q}

    def report(self) -> dict:
        out = super().report()
        out["quotas"] = dict(self.quotas)
        out["short"] = self.shortfall()
        return out


AHEAD = 16  # sealed batches that may wait for their batch filter while later ones are gathered (read-ahead)


def run_blocks(blocks: list[Block], rows: Iterable[Row], sink: ExclusionSink, read_ahead: bool = False
               ) -> Iterator[Row]:
    """`rows` through `blocks` in order: the same result as `rows = block.run(rows, sink)` per block (rows are
    pulled lazily as before, so a `Quota` still stops pulling), with consecutive filters fused into one loop.

    `read_ahead=True` (the caller reads the stream to its end, as a build does): a batch filter that `overlaps`
    (language ID with worker processes) gets later batches gathered while a sealed one is prepared elsewhere,
    when only filters follow it (they pull every row). Rows, counters and exclusions stay the same, in the same
    order: exclusions met while reading ahead are held back until the batch before is done."""
    stream, i = rows, 0
    while i < len(blocks):
        j = i
        while j < len(blocks) and type(blocks[j]).run is Filter.run:
            j += 1
        batch = blocks[j] if j < len(blocks) and type(blocks[j]).run is BatchFilter.run else None
        if j == i and batch is None:
            stream, i = blocks[i].run(stream, sink), i + 1
        else:
            ahead = (read_ahead and batch is not None and batch.overlaps
                     and all(isinstance(b, Filter) for b in blocks[j + 1:]))
            stream, i = _fused(blocks[i:j], batch, stream, sink, ahead), j + (batch is not None)
    return stream


def _fused(plain: list[Filter], batch: BatchFilter | None, rows: Iterable[Row], sink: ExclusionSink,
           ahead: bool = False) -> Iterator[Row]:
    """Plain filters checked one after another per row; survivors gathered for `batch` (when given) exactly as
    `BatchFilter.run` gathers them, prepared, checked and yielded. Counters are kept in locals and added to the
    blocks when the loop ends or stops early (a `Quota` closing the stream): rows in and out per filter follow
    from the rows pulled and the drops (`n_out = n_in - dropped`, the next filter's `n_in`).

    `ahead`: a full batch is sealed (`batch.seal`) and later ones gathered while it is prepared elsewhere; the
    oldest sealed batches are checked as soon as they are `ready`, or when `AHEAD` of them wait. Exclusions met
    while earlier batches wait are held with their batch, so the sink sees them in the sequential order."""
    checks = [f.check for f in plain]
    drops = [0] * len(plain)
    pulled = 0
    buf: list[Row] = []
    size = batch.batch_size if batch is not None else 0
    feed = batch.feed if batch is not None and type(batch).feed is not BatchFilter.feed else None
    pending: deque[tuple[list[Row], list[tuple]]] = deque()  # sealed batches and the exclusions held with them
    held: list[tuple] = []  # exclusions met while gathering `buf` with batches pending
    try:
        for row in rows:
            pulled += 1
            for check in checks:
                verdict = check(row)
                if verdict is not None:
                    j = checks.index(check)
                    drops[j] += 1
                    f = plain[j]
                    f.stats["dropped:" + verdict[0]] += 1
                    if pending:
                        held.append((row.id, verdict[0], f.name, verdict[1]))
                    else:
                        sink.add(row.id, verdict[0], f.name, verdict[1])
                    break
            else:
                if batch is None:
                    yield row
                    continue
                buf.append(row)
                if feed is not None:
                    feed(row)
                if len(buf) >= size:
                    if not ahead:
                        yield from _checked(batch, buf, sink)
                    else:
                        more = batch.seal(buf)  # False: the filter needs every sealed batch checked first
                        pending.append((buf, held))
                        held = []
                        while pending and (not more or len(pending) > AHEAD or batch.ready()):
                            rows_b, held_b = pending.popleft()
                            for e in held_b:
                                sink.add(*e)
                            yield from _checked(batch, rows_b, sink)
                    buf = []
        if ahead:
            if buf:
                batch.seal(buf)
                pending.append((buf, held))
                buf, held = [], []
            while pending:
                rows_b, held_b = pending.popleft()
                for e in held_b:
                    sink.add(*e)
                yield from _checked(batch, rows_b, sink)
        if buf:
            yield from _checked(batch, buf, sink)
    finally:
        for f, dropped in zip(plain, drops):
            f.n_in += pulled
            pulled -= dropped
            f.n_out += pulled


def _checked(f: BatchFilter, batch: list[Row], sink: ExclusionSink) -> Iterator[Row]:
    f.prepare(batch)
    check, name, stats = f.check, f.name, f.stats
    seen = kept = 0
    try:
        for row in batch:
            seen += 1
            verdict = check(row)
            if verdict is None:
                kept += 1
                yield row
            else:
                stats["dropped:" + verdict[0]] += 1
                sink.add(row.id, verdict[0], name, verdict[1])
    finally:
        f.n_in += seen
        f.n_out += kept
