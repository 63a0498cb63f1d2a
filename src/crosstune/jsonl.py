"""JSON lines as every stage writes and resumes them: canonical row bytes, whole-file atomic writes, and reading a
file a killed run appended to (a torn last line dropped, other damage an error naming the file and line).

A base module (it imports only `crosstune.console` and `crosstune.errors`), so data, eval, models and the
data-parallel helper (`crosstune.distributed`) share one implementation without importing each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from crosstune.console import console
from crosstune.errors import CrosstuneError

_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=False, separators=(", ", ": "))
# The C encoder `JSONEncoder.encode` builds on every call, built once (no circular-reference markers: rows come
# from JSON, so they are trees). Same bytes as `_ROW_ENCODER.encode`, without its per-call Python setup.
_C_ROW_ENCODER = (json.encoder.c_make_encoder(None, _ROW_ENCODER.default, json.encoder.encode_basestring, None,
                                              ": ", ", ", False, False, True)
                  if json.encoder.c_make_encoder is not None else None)


def dumps_row(row: dict) -> str:
    """Canonical JSON for a row: the same row always gives the same bytes."""
    if _C_ROW_ENCODER is None:
        return _ROW_ENCODER.encode(row)
    return "".join(_C_ROW_ENCODER(row, 0))


def write_text(path: str | Path, text: str) -> None:
    """Write a text file whole and rename it into place (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_rows(path: str | Path, rows) -> None:
    """A JSONL file of `rows` in the given order, written whole (the same rows give the same bytes)."""
    write_text(path, "".join(dumps_row(r) + "\n" for r in rows))


def read_rows(path: str | Path, repair: bool = False, what: str = "row") -> list[dict]:
    """Rows of a JSONL file that a run appends to. A last line without its newline (a killed write) is dropped, and
    with `repair` cut from the file (the next append starts a clean line); any other malformed line is an error
    naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    rows = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
        except ValueError:
            raise CrosstuneError(f"{path}:{i}: malformed {what}; delete the file to start this run over "
                                 "(cached model calls are reused)") from None
    if data[end:].strip():  # the unterminated tail of an interrupted write
        console.print(f"[yellow]{path}:{len(lines) + 1}: dropping a half-written last line[/]")
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return rows
