"""Block 1: read raw documents (text files, lines grouped by document id, JSONL/JSON/Parquet, HF datasets, XQuAD),
split them into response-sized passages, and filter passages by length, letters and language ID.

A passage is a `Row` whose example holds one assistant message (the passage) in its declared language, so the
shared length and language-ID filters of `crosstune.data.filters` check it unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from crosstune.data.blocks import Block, ExclusionSink, Filter, Row
from crosstune.data.filters import LangIdFilter, LengthFilter
from crosstune.data.filters.langid import LangIdConfig
from crosstune.data.filters.length import LengthConfig
from crosstune.data.io import read_rows
from crosstune.data.schema import Example, Message
from crosstune.data.xinstruct.config import SegmentConfig, SourceSpec
from crosstune.errors import CrosstuneError
from crosstune.hashing import file_sha256
from crosstune.paths import Lookup

_PARAGRAPHS = re.compile(r"\n\s*\n|\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s+|(?<=[。！？；])")
_LETTER = re.compile(r"[^\W\d_]")


def _format(spec: SourceSpec, path: Path) -> str:
    if spec.format != "auto":
        return spec.format
    name = path.name.lower().removesuffix(".gz")
    if path.is_dir():
        return "hf"
    if name.endswith(".txt"):
        return "lines" if spec.doc_ids else "text"
    if name.endswith(".json"):
        try:
            head = json.loads(path.read_text(encoding="utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return "jsonl"
        return "xquad" if isinstance(head, dict) and isinstance(head.get("data"), list) else "jsonl"
    return "jsonl"


def read_documents(spec: SourceSpec, lookup: Lookup = Lookup()) -> tuple[list[tuple[str, object]], dict]:
    """[(document id, raw value)] of one source in file order, and {path, sha256, format}. Raw values are what the
    file holds (a non-string is reported by the reader block, not here). Paths resolve by `lookup` (the data root,
    the config's folder, the working directory: crosstune.paths)."""
    path = lookup(spec.path)
    fmt = _format(spec, path)
    info = {"path": spec.path, "format": fmt, "language": spec.language}
    if path.is_file():
        info["sha256"] = file_sha256(path)
    try:
        if fmt == "text":
            docs = [(path.stem, path.read_text(encoding="utf-8-sig"))]
        elif fmt == "lines":
            docs = _lines(spec, path, lookup)
        elif fmt == "xquad":
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            docs = [(f"{a.get('title', i)}/{j}", p.get("context")) for i, a in enumerate(data.get("data", []))
                    for j, p in enumerate(a.get("paragraphs", []))]
        else:
            docs = []
            for line, row in read_rows(path):
                doc_id = str(row.get(spec.id_field, line)) if spec.id_field else str(line)
                docs.append((doc_id, row.get(spec.field)))
    except UnicodeDecodeError as e:
        raise CrosstuneError(f"{spec.path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (ValueError, AttributeError) as e:
        raise CrosstuneError(f"{spec.path}: cannot read as {fmt} ({e})") from None
    return docs, info


def _lines(spec: SourceSpec, path: Path, lookup: Lookup) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not spec.doc_ids:
        return [(str(i + 1), t) for i, t in enumerate(lines)]
    ids = lookup(spec.doc_ids).read_text(encoding="utf-8").splitlines()
    if len(ids) != len(lines):
        raise CrosstuneError(f"{spec.path}: {len(lines)} lines but {spec.doc_ids} has {len(ids)} document ids; "
                             "expected one id per line")
    groups: dict[str, list[str]] = {}
    for doc_id, text in zip(ids, lines):
        groups.setdefault(doc_id.strip(), []).append(text)
    return [(doc_id, "\n".join(ts)) for doc_id, ts in groups.items()]


def _split_long(unit: str, max_chars: int) -> list[str]:
    """A paragraph longer than `max_chars`: cut at sentence ends, then at spaces, then hard (no spaces: zh, ja)."""
    pieces = [s for s in _SENTENCE_END.split(unit) if s.strip()]
    out: list[str] = []
    for s in pieces:
        while len(s) > max_chars:
            cut = s.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            out.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            out.append(s)
    return out


def segment(text: str, max_chars: int, min_chars: int) -> list[str]:
    """Pack paragraphs (then sentences) greedily into passages of at most `max_chars`; a short tail joins the
    previous passage when it fits."""
    units: list[str] = []
    for para in _PARAGRAPHS.split(text.replace("\r\n", "\n")):
        para = para.strip()
        if para:
            units.extend([para] if len(para) <= max_chars else _split_long(para, max_chars))
    passages: list[str] = []
    current = ""
    for u in units:
        joined = f"{current}\n{u}" if current else u
        if len(joined) <= max_chars:
            current = joined
        else:
            passages.append(current)
            current = u
    if current:
        if passages and len(current) < min_chars and len(passages[-1]) + 1 + len(current) <= max_chars:
            passages[-1] = f"{passages[-1]}\n{current}"
        else:
            passages.append(current)
    return passages


class ReadSegment(Block):
    """Documents of every source -> passage rows. Drops documents that are not strings or are empty; `limit`
    caps the passages each source yields (before the filters)."""

    name = "read"

    def __init__(self, sources: list[tuple[SourceSpec, list[tuple[str, object]]]], cfg: SegmentConfig,
                 per_source_limit: int = 0, seed: int = 0):
        super().__init__()
        self.sources, self.cfg, self.limit, self.seed = sources, cfg, per_source_limit, seed

    def run(self, rows: Iterable[Row] | None, sink: ExclusionSink) -> Iterator[Row]:
        for spec, docs in self.sources:
            lang = spec.language
            order = np.random.default_rng(self.seed).permutation(len(docs)) if docs else []
            made = 0
            for i in order:
                if self.limit and made >= self.limit:
                    break
                doc_id, raw = docs[int(i)]
                self.n_in += 1
                key = f"{lang}:{doc_id}"
                if not isinstance(raw, str):
                    self._drop(sink, key, "not_text", f"document is {type(raw).__name__}, expected a string")
                    continue
                text = raw.replace("\ufeff", "").strip()
                if not text:
                    self._drop(sink, key, "empty_document", "no text")
                    continue
                self.stats["documents"] += 1
                for k, passage in enumerate(segment(text, self.cfg.max_chars, self.cfg.min_chars)):
                    if self.limit and made >= self.limit:
                        break
                    made += 1
                    self.n_out += 1
                    meta = {"language": lang, "doc_id": str(doc_id), "passage": k, "source": spec.path}
                    ex = Example(id=f"{key}#{k}", messages=[Message("assistant", passage, lang)], meta=meta)
                    yield Row(ex, (("assistant", passage, lang),))
            self.stats[f"passages:{lang}"] += made

    def _drop(self, sink: ExclusionSink, key: str, reason: str, detail: str) -> None:
        self.stats[f"dropped:{reason}"] += 1
        sink.add(key, reason, self.name, detail)


class LettersFilter(Filter):
    """Passages with fewer than `min_letters` letters (tables, numbers, markup) are not text to answer with."""

    name = "letters"

    def __init__(self, min_letters: int):
        super().__init__()
        self.min_letters = min_letters

    def check(self, row: Row) -> tuple[str, str] | None:
        n = len(_LETTER.findall(row.example.response.content))
        return None if n >= self.min_letters else ("non_text", f"{n} letters < {self.min_letters}")


def passage_filters(cfg: SegmentConfig, languages: list[str]) -> list[Block]:
    """Length, letters, then language ID on the passage (the shared filter blocks)."""
    blocks: list[Block] = [LengthFilter(LengthConfig(min_chars=cfg.min_chars, max_chars=cfg.max_chars,
                                                     sides=["assistant"])),
                           LettersFilter(cfg.min_letters)]
    if cfg.langid:
        lid = LangIdFilter(LangIdConfig(backend=cfg.langid, sides=["assistant"], min_confidence=cfg.min_confidence,
                                        drop_undetermined=cfg.drop_undetermined), languages)
        blocks.append(lid)
    return blocks
