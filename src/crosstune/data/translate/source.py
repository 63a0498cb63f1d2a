"""Read the rows to translate: Alpaca-style fields (with a column prefix) or chat messages, with ids and lines.

A field missing from every row is a config error (wrong prefix or name) raised before any work; missing from some
rows it is an error (`on_missing: error`) or those rows are excluded with the reason (`exclude`, the default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crosstune.data.formats import detect_format, row_to_example
from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where

CHAT_FORMATS = ("sharegpt", "openai", "crosstune")
OPTIONAL = ("input",)  # Alpaca rows may leave out the input


@dataclass
class SourceRow:
    id: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)  # field or "messages.<i>" -> text
    roles: list[str] = field(default_factory=list)  # chat rows: every message's role, in order
    translate: list[str] = field(default_factory=list)  # keys of `fields` to translate (others are copied)
    missing: list[str] = field(default_factory=list)


def read_source(cfg, path: Path) -> tuple[list[SourceRow], str]:
    """(rows, layout) where layout is "fields" (Alpaca-like) or "messages" (chat)."""
    src = cfg.source
    rows = []
    fmt = None if src.format == "auto" else src.format
    for index, (line, raw) in enumerate(read_rows(path)):
        if cfg.limit is not None and index >= cfg.limit:
            break
        loc = where(path, line)
        if fmt is None:
            try:
                fmt = detect_format(raw, src.prefix)
            except CrosstuneError as e:
                raise CrosstuneError(f"{loc}: {e}") from None
        rid = raw.get(src.id_field) if src.id_field else raw.get("id")
        if src.id_field and rid is None:
            raise CrosstuneError(f"{where(path, line, src.id_field)}: missing id field")
        rid = str(rid) if rid is not None else str(index)
        rows.append(_chat_row(raw, fmt, loc, index, rid, line, cfg) if fmt in CHAT_FORMATS
                    else _field_row(raw, loc, rid, line, cfg))
    if not rows:
        raise CrosstuneError(f"{path}: no rows")
    layout = "messages" if fmt in CHAT_FORMATS else "fields"
    if layout == "fields":
        for f in cfg.fields:
            if f not in OPTIONAL and all(f in r.missing for r in rows):
                raise CrosstuneError(f"{where(path, rows[0].line, src.prefix + f)}: missing in every row; check "
                                     f"`fields` and `source.prefix` (row keys look like the first row's)")
    if cfg.on_missing == "error":
        bad = next((r for r in rows if r.missing), None)
        if bad is not None:
            raise CrosstuneError(f"{where(path, bad.line, src.prefix + bad.missing[0])}: missing (set on_missing: "
                                 "exclude to skip such rows with a reason)")
    seen: dict[str, int] = {}
    for r in rows:
        if r.id in seen:
            raise CrosstuneError(f"{where(path, r.line)}: duplicate id {r.id!r} (first on line {seen[r.id]})")
        seen[r.id] = r.line
    return rows, layout


def _field_row(raw: dict, loc: str, rid: str, line: int, cfg) -> SourceRow:
    row = SourceRow(rid, line)
    for f in cfg.fields:
        value = raw.get(cfg.source.prefix + f)
        if value is None:
            if f in OPTIONAL:
                row.fields[f] = ""
            else:
                row.missing.append(f)
            continue
        if not isinstance(value, str):
            raise CrosstuneError(f"{loc} field '{cfg.source.prefix + f}': expected a string, got "
                                 f"{type(value).__name__}")
        row.fields[f] = value
    row.translate = list(row.fields)
    return row


def _chat_row(raw: dict, fmt: str, loc: str, index: int, rid: str, line: int, cfg) -> SourceRow:
    ex = row_to_example(raw, fmt, loc, index=index)
    wanted = set(cfg.fields) & {"system", "user", "assistant"} or {"system", "user", "assistant"}
    row = SourceRow(rid, line, roles=[m.role for m in ex.messages])
    row.fields = {f"messages.{i}": m.content for i, m in enumerate(ex.messages)}
    row.translate = [f"messages.{i}" for i, m in enumerate(ex.messages) if m.role in wanted]
    return row
