"""A parallel corpus: the same items in several languages, keyed by id, validated precisely, stored compactly.

Each language keeps only (instruction, input, output) per item, in a `FieldStore`: decoded strings in memory
while small, spilled to a temporary file (UTF-8 plus offsets) once it passes `SPILL_CHARS`. Ids are shared
across languages through one compact table (id digest -> int in a `DigestMap`, the id strings in a `StringList`)
and a position array per language, so a corpus of millions of rows costs about 50 bytes of RAM per item.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from crosstune.data.digests import DigestMap, StringList, digest
from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError

SPILL_CHARS = 32_000_000  # per language: above this many characters the texts move to a temporary file
Fields = tuple[str, str, str]


class FieldStore:
    """(instruction, input, output) of each item of one language, by position."""

    def __init__(self, spill_chars: int = SPILL_CHARS):
        self.spill_chars = spill_chars
        self._rows: list[Fields] | None = []
        self._chars = 0
        self._file = None
        self._offsets = array("Q", [0])
        self._n = 0

    @property
    def in_memory(self) -> bool:
        return self._rows is not None

    def __len__(self) -> int:
        return self._n

    def append(self, fields: Fields) -> None:
        self._n += 1
        if self._rows is not None:
            self._rows.append(fields)
            self._chars += len(fields[0]) + len(fields[1]) + len(fields[2])
            if self._chars > self.spill_chars:
                self._spill()
            return
        self._write(fields)

    def _spill(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="crosstune-corpus-")
        rows, self._rows = self._rows, None
        for f in rows:
            self._write(f)

    def _write(self, fields: Fields) -> None:
        end = self._offsets[-1]
        for text in fields:
            b = text.encode("utf-8", "surrogatepass")
            self._file.write(b)
            end += len(b)
            self._offsets.append(end)

    def finish(self) -> None:
        """Done appending: flush the file and open the bounded read cache."""
        if self._file is not None:
            self._file.flush()
            self.get = lru_cache(maxsize=1 << 12)(self._read)  # type: ignore[method-assign]

    def get(self, i: int) -> Fields:
        return self._rows[i]  # type: ignore[index]

    def _read(self, i: int) -> Fields:
        o = self._offsets
        a, b, c, d = o[3 * i], o[3 * i + 1], o[3 * i + 2], o[3 * i + 3]
        raw = os.pread(self._file.fileno(), d - a, a)
        dec = "surrogatepass"
        return raw[: b - a].decode("utf-8", dec), raw[b - a: c - a].decode("utf-8", dec), raw[c - a:].decode("utf-8", dec)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class ValidationReport:
    languages: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids present elsewhere but not here
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids seen twice
    empty: dict[str, list[str]] = field(default_factory=dict)  # lang -> ids with an empty message

    @property
    def ok(self) -> bool:
        return not (any(self.missing.values()) or any(self.duplicates.values()) or any(self.empty.values()))

    def summary(self, limit: int = 5) -> str:
        lines = []
        for kind in ("missing", "duplicates", "empty"):
            for lang, ids in getattr(self, kind).items():
                if ids:
                    shown = ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")
                    lines.append(f"{lang}: {len(ids)} {kind} id(s): {shown}")
        return "\n".join(lines) or "ok"


class _Ids:
    """The ids of one language in file order (iterable, sized, `in`)."""

    def __init__(self, corpus: "ParallelCorpus", lang: str):
        self._c, self._lang = corpus, lang

    def __iter__(self) -> Iterator[str]:
        ids = self._c._ids
        return (ids[g] for g in self._c._order[self._lang])

    def __len__(self) -> int:
        return len(self._c._order[self._lang])

    def __contains__(self, item_id: object) -> bool:
        return self._c.position(self._lang, item_id) is not None  # type: ignore[arg-type]


class ParallelCorpus:
    """Items in several languages under shared ids: `fields(lang, id) -> (instruction, input, output)`.

    Fill with `add` (the first row of an id wins; repeats and empty rows are reported), then `finish`."""

    def __init__(self, spill_chars: int = SPILL_CHARS):
        self.spill_chars = spill_chars
        self._gid = DigestMap()  # digest of an id -> its int
        self._ids = StringList()  # int -> id
        self.stores: dict[str, FieldStore] = {}
        self._order: dict[str, array] = {}
        self._seen: dict[str, bytearray] = {}
        self._pos: dict[str, np.ndarray] = {}
        self.report = ValidationReport(languages=[])

    # -- building
    def add(self, lang: str, item_id: str, fields: Fields, empty: bool = False) -> None:
        if lang not in self.stores:
            self.stores[lang] = FieldStore(self.spill_chars)
            self._order[lang], self._seen[lang] = array("q"), bytearray()
            self.report.languages.append(lang)
            self.report.duplicates[lang], self.report.empty[lang] = [], []
        key = digest(item_id)
        g = self._gid.get(key)
        if g is None:
            g = self._ids.append(item_id)
            self._gid.put(key, g)
        seen = self._seen[lang]
        if g >= len(seen):
            seen.extend(bytes(max(g + 1 - len(seen), len(seen))))
        if seen[g]:
            self.report.duplicates[lang].append(item_id)
            return
        seen[g] = 1
        if empty:
            self.report.empty[lang].append(item_id)
        self._order[lang].append(g)
        self.stores[lang].append(fields)

    def finish(self) -> "ParallelCorpus":
        n = len(self._ids)
        for lang, order in self._order.items():
            pos = np.full(n, -1, dtype=np.int64)
            pos[np.frombuffer(order, dtype=np.int64)] = np.arange(len(order))
            self._pos[lang] = pos
            self.stores[lang].finish()
            present = np.flatnonzero(pos < 0)
            self.report.missing[lang] = sorted((self._ids[int(g)] for g in present), key=_id_key)
        self._seen = {}
        return self

    # -- reading
    @property
    def languages(self) -> list[str]:
        return list(self.stores)

    @property
    def items(self) -> dict[str, _Ids]:
        return {lang: _Ids(self, lang) for lang in self.stores}

    def position(self, lang: str, item_id: str) -> int | None:
        g = self._gid.get(digest(item_id))
        if g is None:
            return None
        p = int(self._pos[lang][g])
        return None if p < 0 else p

    def fields(self, lang: str, item_id: str) -> Fields:
        p = self.position(lang, item_id)
        if p is None:
            raise KeyError(f"{lang}:{item_id}")
        return self.stores[lang].get(p)

    def ids(self, langs: Iterable[str] | None = None) -> Sequence[str]:
        """Ids present in every given language, in the first language's order: a list while the texts are in
        memory, else a compact view (`IdView`) that decodes on access."""
        langs = list(langs or self.languages)
        order = np.frombuffer(self._order[langs[0]], dtype=np.int64)
        keep = np.ones(len(order), dtype=bool)
        for lang in langs[1:]:
            keep &= self._pos[lang][order] >= 0
        view = IdView(order[keep], self._ids)
        return list(view) if all(self.stores[lang].in_memory for lang in langs) else view

    def require(self, langs: Iterable[str]) -> None:
        missing = [lang for lang in langs if lang not in self.stores]
        if missing:
            raise CrosstuneError(f"the corpus has no {', '.join(missing)}; it has {', '.join(self.languages)}")

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

    # -- constructors
    @classmethod
    def from_examples(cls, by_lang: dict[str, Iterable[Example]], spill_chars: int = SPILL_CHARS) -> "ParallelCorpus":
        corpus = cls(spill_chars)
        for lang, examples in by_lang.items():
            for ex in examples:
                corpus.add(lang, ex.id, example_fields(ex), is_empty(ex))
        return corpus.finish()

    @classmethod
    def from_sources(cls, sources: list[dict]) -> "ParallelCorpus":
        """Build from config entries `{language, path, format?, prefix?, id_field?}`."""
        from crosstune.data.io import read_examples
        from crosstune.languages import normalize

        corpus = cls()
        for src in sources:
            lang = normalize(src["language"])
            for ex in read_examples(Path(src["path"]), src.get("format", "auto"), language=lang,
                                    prefix=src.get("prefix", ""), id_field=src.get("id_field")):
                corpus.add(lang, ex.id, example_fields(ex), is_empty(ex))
        return corpus.finish()


class IdView(Sequence):
    """A sequence of ids by position, decoded from the shared `StringList` on access."""

    def __init__(self, gids: np.ndarray, ids: StringList):
        self._g, self._ids = gids, ids

    def __len__(self) -> int:
        return len(self._g)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._ids[int(g)] for g in self._g[i]]
        return self._ids[int(self._g[i])]

    def __iter__(self) -> Iterator[str]:
        ids = self._ids
        for start in range(0, len(self._g), 1 << 16):  # in chunks: no n-sized list of ints
            for g in self._g[start:start + (1 << 16)].tolist():
                yield ids[g]


def example_fields(ex: Example) -> Fields:
    """(instruction, input, output); non-Alpaca rows give the whole last user turn as the instruction."""
    f = ex.meta.get("fields") or {"instruction": ex.instruction.content, "input": ""}
    return f["instruction"], f["input"], ex.response.content


def is_empty(ex: Example) -> bool:
    return any(not m.content.strip() for m in ex.messages if m.role != "system")


def _id_key(i: str):
    return (0, int(i), "") if i.isascii() and i.isdigit() and len(i) < 4000 else (1, 0, i)
