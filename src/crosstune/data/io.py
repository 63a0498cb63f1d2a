"""Read and write instruction sets: Alpaca, ShareGPT, OpenAI messages, prompt/response and crosstune rows,
in JSON, JSONL (gzip too), Parquet and HF datasets (local folder, or hub name when online).

Reading is two steps, kept apart: `read_rows` yields raw dicts with their location, `row_to_example`
turns one row into an `Example` (`crosstune.data.formats`). Every problem names the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crosstune.data.formats import (FORMATS, detect_format, example_to_row, json_kind, nested_row, require_pair,
                                    row_to_example)
from crosstune.data.jsontext import array_element, parse_json
from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError, where
from crosstune.jsonl import dumps_row  # noqa: F401 (data.io.dumps_row for callers)
from crosstune.languages import normalize

_WS = re.compile(r"[ \t\n\r]*")
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # truncated or corrupt gzip; BadGzipFile is an OSError


def _not_a_row(loc: str, value: Any) -> CrosstuneError:
    return CrosstuneError(f"{loc}: expected a JSON object (one row), got {json_kind(value)}")


def _decode_error(path: Path, line: int | None, exc: UnicodeDecodeError) -> CrosstuneError:
    return CrosstuneError(f"{where(path, line)}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "re-encode the file as UTF-8")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    # Decode line by line (not through a text wrapper) so a bad byte is reported on its own line.
    n = 0
    try:
        with _open_binary(path) as f:
            for line_no, raw in enumerate(f, 1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark: accepted
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _decode_error(path, line_no, e) from None
                if not line.strip():
                    continue
                row = parse_json(line, where(path, line_no))
                if not isinstance(row, dict):
                    raise _not_a_row(where(path, line_no), row)
                n += 1
                yield line_no, row
    except _GZIP_ERRORS as e:
        raise CrosstuneError(f"{path}: cannot read ({e}); is the file truncated or corrupt?") from None
    if n == 0:
        raise CrosstuneError(f"{path}: empty file, expected at least one row")


def _read_text(path: Path) -> str:
    try:
        with _open_binary(path) as f:
            data = f.read()
    except _GZIP_ERRORS as e:
        raise CrosstuneError(f"{path}: cannot read ({e}); is the file truncated or corrupt?") from None
    try:
        return data.decode("utf-8-sig")  # a byte order mark is accepted
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _decode_error(path, line, e) from None


def _read_json(path: Path) -> Iterator[tuple[int, dict]]:
    """A JSON array of rows, element by element (each row's line is known), or an object holding one array.
    The text is read whole: use JSON Lines for sets that do not fit in memory."""
    text = _read_text(path)
    start = _WS.match(text).end()
    if start == len(text):
        raise CrosstuneError(f"{path}: empty file, expected a JSON array of rows")
    if text[start] == "[":
        yield from _json_array(path, text, start)
        return
    if text[start] == "{" and "\n" in text.strip() and _looks_like_jsonl(text):
        yield from _read_jsonl(path)  # many ".json" files are really JSON Lines
        return
    data = parse_json(text, str(path), "file")
    if isinstance(data, dict):
        lists = [(k, v) for k, v in data.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise CrosstuneError(f"{path}: expected a JSON array of rows (or an object holding one array), got an "
                                 f"object with {len(lists)} arrays")
        key, data = lists[0]
        if not data:
            raise CrosstuneError(f"{path} field '{key}': an empty array, expected rows")
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise _not_a_row(f"{path} field '{key}' row {i + 1}", row)
            yield i + 1, row
        return
    raise CrosstuneError(f"{path}: expected a JSON array of rows, got {json_kind(data)}")


def _looks_like_jsonl(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return e.lineno > 1  # the first object ended and a second one began on a later line
    except (ValueError, RecursionError):
        return False
    return False


def _json_array(path: Path, text: str, start: int) -> Iterator[tuple[int, dict]]:
    """Rows of a top-level array; each row is parsed alone, so errors name its line."""
    pos, line, last, n = start + 1, 1 + text.count("\n", 0, start), start, 0
    while True:
        pos = _WS.match(text, pos).end()
        if pos >= len(text):
            raise CrosstuneError(f"{where(path, text.count(chr(10)) + 1)}: the JSON array is not closed; "
                                 "is the file truncated?")
        if text[pos] == "]":
            break
        if n:
            if text[pos] != ",":
                line += text.count("\n", last, pos)
                raise CrosstuneError(f"{where(path, line)}: malformed JSON (expected ',' or ']' after row {n})")
            pos = _WS.match(text, pos + 1).end()
        line += text.count("\n", last, pos)
        last = pos
        loc = f"{where(path, line)} (row {n + 1})"
        row, end = array_element(text, pos, loc)
        if not isinstance(row, dict):
            raise _not_a_row(loc, row)
        n += 1
        yield line, row
        pos = end
    if _WS.match(text, pos + 1).end() != len(text):
        raise CrosstuneError(f"{where(path, line)}: extra data after the JSON array")
    if n == 0:
        raise CrosstuneError(f"{path}: an empty JSON array, expected rows")


def _read_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    """Rows of a Parquet file, a batch at a time (never the whole table)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        total = pf.metadata.num_rows
    except Exception as e:  # pyarrow raises several types for a bad file
        raise CrosstuneError(f"{path}: not a readable Parquet file ({e}); is it truncated?") from None
    if total == 0:
        raise CrosstuneError(f"{path}: empty file, expected at least one row")
    line = 0
    batches = pf.iter_batches(batch_size=4096)
    while True:
        try:
            batch = next(batches, None)
            rows = batch.to_pylist() if batch is not None else None
        except Exception as e:  # corrupt pages, bad UTF-8 in a string column, ...
            raise CrosstuneError(f"{path}: rows {line + 1}-{line + 4096} unreadable ({type(e).__name__}: "
                                 f"{str(e)[:200]}); is the file corrupt?") from None
        if rows is None:
            break
        for row in rows:
            line += 1
            yield line, row


def _read_hf(spec: str) -> Iterator[tuple[int, dict]]:
    import datasets

    path = Path(spec)
    name, _, split = spec.partition("@")  # "org/name@train" picks a split
    try:
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
        else:
            ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:
        raise CrosstuneError(f"{spec}: cannot load as a HF dataset ({type(e).__name__}: {e})") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise CrosstuneError(f"{spec}: has splits {list(ds)}; name one as PATH@SPLIT")
        ds = next(iter(ds.values()))
    rows = iter(ds)
    i = 0
    while True:
        try:
            row = next(rows, None)
        except Exception as e:
            raise CrosstuneError(f"{spec}: row {i + 1} unreadable ({type(e).__name__}: {e})") from None
        if row is None:
            break
        i += 1
        yield i, row


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """`(line number, text without its final newline)` of a plain UTF-8 text file (gzip too), streamed; a byte
    order mark is accepted, a NUL byte or bad UTF-8 is an error naming the line."""
    p = Path(path)
    try:
        with _open_binary(p) as f:
            for line_no, raw in enumerate(f, 1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8").removesuffix("\n")
                except UnicodeDecodeError as e:
                    raise _decode_error(p, line_no, e) from None
                if "\x00" in text:
                    raise CrosstuneError(f"{where(p, line_no)}: a NUL byte at column {text.index(chr(0)) + 1}; "
                                         "expected UTF-8 text, one sentence per line")
                yield line_no, text
    except _GZIP_ERRORS as e:
        raise CrosstuneError(f"{p}: cannot read ({e}); is the file truncated or corrupt?") from None


def read_rows(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield `(line_or_row_number, row)` from any supported container."""
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists():
            return _read_hf(str(p))
        raise CrosstuneError(f"{p}: a folder but not a saved HF dataset (no dataset_info.json)")
    if not p.exists():
        if "/" in str(path) and not str(path).startswith((".", "/")) and p.suffix == "":
            return _read_hf(str(path))
        raise CrosstuneError(f"{p}: no such file")
    if name.endswith(".jsonl"):
        return _read_jsonl(p)
    if name.endswith(".json"):
        return _read_json(p)
    if name.endswith(".parquet"):
        return _read_parquet(p)
    raise CrosstuneError(f"{p}: unknown file type; expected .json, .jsonl, .jsonl.gz, .parquet or a HF dataset folder")


def read_examples(path: str | Path, fmt: str = "auto", *, language: str | None = None, prefix: str = "",
                  id_field: str | None = None) -> Iterator[Example]:
    """Read a file of any supported format into `Example`s; ids default to the 0-based row index."""
    if fmt not in FORMATS:
        raise CrosstuneError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    lang = normalize(language) if language else None
    chosen = None if fmt == "auto" else fmt
    nested = prefix.endswith(".")
    for index, (line, row) in enumerate(read_rows(path)):
        loc = where(path, line)
        if nested:  # "pt.": the row's "pt" object; rows without one lack that language (a gap, not an error)
            row = nested_row(row, prefix)
            if row is None:
                continue
        if chosen is None:
            try:
                chosen = detect_format(row, prefix)
            except CrosstuneError as e:
                raise CrosstuneError(f"{loc}: {e}") from None
        yield require_pair(row_to_example(row, chosen, loc, index=index, language=lang,
                                           prefix="" if nested else prefix, source=str(path), id_field=id_field), loc)


@contextmanager
def _open_write(p: Path):
    if not p.name.endswith(".gz"):
        with open(p, "w", encoding="utf-8") as f:
            yield f
        return
    # mtime=0 and no file name in the header, so the same rows give the same bytes; GzipFile does not close
    # a file object it was given, hence the outer `with`.
    with open(p, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as f:
        yield f


def write_examples(path: str | Path, examples: Iterable[Example], fmt: str = "crosstune") -> int:
    """Write examples as JSONL (gzip when the name ends .gz), JSON or Parquet; returns the row count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = (example_to_row(ex, fmt) for ex in examples)
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(list(rows))
        pq.write_table(table, p)
        return table.num_rows
    n = 0
    with _open_write(p) as f:
        if name.endswith(".json"):
            data = list(rows)
            json.dump(data, f, ensure_ascii=False, indent=1)
            return len(data)
        for row in rows:
            f.write(dumps_row(row) + "\n")
            n += 1
    return n
