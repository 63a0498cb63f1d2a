"""Read and write instruction sets: Alpaca, ShareGPT, OpenAI messages, prompt/response and crosstune rows,
in JSON, JSONL (gzip too), Parquet and HF datasets (local folder, or hub name when online).

Reading is two steps, kept apart: `read_rows` yields raw dicts with their location, `row_to_example`
turns one row into an `Example`. Every problem names the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError, where
from crosstune.languages import normalize

FORMATS = ("auto", "alpaca", "sharegpt", "openai", "prompt_response", "crosstune")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "system": "system", "bot": "assistant"}


def _open_text(path: Path):
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict")


def _decode_error(path: Path, line: int | None, exc: UnicodeDecodeError) -> CrosstuneError:
    return CrosstuneError(f"{where(path, line)}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "re-encode the file as UTF-8")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    # Decode line by line (not through a text wrapper) so a bad byte is reported on its own line.
    n = 0
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as f:
            for line_no, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _decode_error(path, line_no, e) from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CrosstuneError(f"{where(path, line_no)}: malformed JSON ({e.msg} at column {e.colno}); "
                                         "expected one JSON object per line") from None
                if not isinstance(row, dict):
                    raise CrosstuneError(f"{where(path, line_no)}: expected a JSON object, got {type(row).__name__}")
                n += 1
                yield line_no, row
    except (OSError, EOFError) as e:
        raise CrosstuneError(f"{path}: cannot read ({e})") from None
    if n == 0:
        raise CrosstuneError(f"{path}: empty file, expected at least one row")


def _read_json(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with _open_text(path) as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise _decode_error(path, None, e) from None
    if not text.strip():
        raise CrosstuneError(f"{path}: empty file, expected a JSON array of rows")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.lineno > 1 and text.lstrip().startswith("{"):
            # Many ".json" files are really JSON Lines.
            yield from _read_jsonl(path)
            return
        raise CrosstuneError(f"{where(path, e.lineno)}: malformed JSON ({e.msg} at column {e.colno})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise CrosstuneError(f"{path}: expected a JSON array of rows (or an object holding one array)")
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise CrosstuneError(f"{path}: expected a non-empty JSON array of rows")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise CrosstuneError(f"{path}: row {i}: expected a JSON object, got {type(row).__name__}")
        yield i + 1, row


def _read_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise CrosstuneError(f"{path}: not a readable Parquet file ({e})") from None
    if table.num_rows == 0:
        raise CrosstuneError(f"{path}: empty file, expected at least one row")
    for i, row in enumerate(table.to_pylist()):
        yield i + 1, row


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
    for i, row in enumerate(ds):
        yield i + 1, row


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


def detect_format(row: dict, prefix: str = "") -> str:
    keys = set(row)
    if "messages" in keys and "id" in keys and isinstance(row.get("meta", {}), dict) and "meta" in keys:
        return "crosstune"
    if "messages" in keys:
        return "openai"
    if "conversations" in keys:
        return "sharegpt"
    if f"{prefix}instruction" in keys and f"{prefix}output" in keys:
        return "alpaca"
    if f"{prefix}prompt" in keys and f"{prefix}response" in keys:
        return "prompt_response"
    raise CrosstuneError(f"cannot tell the row format from fields {sorted(keys)}; expected alpaca "
                         "(instruction/input/output), sharegpt (conversations), openai (messages) or prompt/response")


def _text(row: dict, key: str, loc: str, required: bool = True) -> str:
    if key not in row or row[key] is None:
        if required:
            raise CrosstuneError(f"{loc}: missing field '{key}'")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise CrosstuneError(f"{loc} field '{key}': expected a string, got {type(value).__name__}")
    return value


def alpaca_user_text(instruction: str, inp: str) -> str:
    return f"{instruction}\n\n{inp}" if inp.strip() else instruction


def _messages_from_list(items: Any, loc: str, role_key: str, text_key: str, roles: dict | None) -> list[Message]:
    if not isinstance(items, list) or not items:
        raise CrosstuneError(f"{loc}: expected a non-empty list of messages")
    out = []
    for j, m in enumerate(items):
        if not isinstance(m, dict) or role_key not in m or text_key not in m:
            raise CrosstuneError(f"{loc} message {j}: expected an object with '{role_key}' and '{text_key}'")
        role = roles.get(m[role_key]) if roles else m[role_key]
        if role not in ("system", "user", "assistant"):
            raise CrosstuneError(f"{loc} message {j}: unknown role {m[role_key]!r}")
        lang = m.get("language")
        if lang:
            try:
                lang = normalize(lang)
            except CrosstuneError as e:
                raise CrosstuneError(f"{loc} message {j} field 'language': {e}") from None
        out.append(Message(role, str(m[text_key]), lang or None))
    return out


def row_to_example(row: dict, fmt: str, loc: str, *, index: int, language: str | None = None,
                   prefix: str = "", source: str | None = None, id_field: str | None = None) -> Example:
    """One raw row -> `Example`. `prefix` selects columns like `en_instruction` in parallel files."""
    meta: dict[str, Any] = {}
    if fmt == "crosstune":
        if "id" not in row:
            raise CrosstuneError(f"{loc}: missing field 'id'")
        msgs = _messages_from_list(row.get("messages"), loc, "role", "content", None)
        for m in msgs:
            m.language = m.language or language
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise CrosstuneError(f"{loc} field 'meta': expected an object, got {type(meta).__name__}")
        return Example(id=str(row["id"]), messages=msgs, source=row.get("source"), meta=dict(meta))
    if fmt == "alpaca":
        instr = _text(row, f"{prefix}instruction", loc)
        inp = _text(row, f"{prefix}input", loc, required=False)
        out = _text(row, f"{prefix}output", loc)
        meta["fields"] = {"instruction": instr, "input": inp}
        msgs = [Message("user", alpaca_user_text(instr, inp), language), Message("assistant", out, language)]
    elif fmt == "prompt_response":
        prompt = _text(row, f"{prefix}prompt", loc)
        msgs = [Message("user", prompt, language), Message("assistant", _text(row, f"{prefix}response", loc), language)]
        meta["fields"] = {"instruction": prompt, "input": ""}
    elif fmt == "sharegpt":
        msgs = _messages_from_list(row.get("conversations"), loc, "from", "value", SHAREGPT_ROLES)
    elif fmt == "openai":
        msgs = _messages_from_list(row.get("messages"), loc, "role", "content", None)
    else:
        raise CrosstuneError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if language:
        for m in msgs:
            m.language = m.language or language
    rid = row.get(id_field) if id_field else row.get("id")
    return Example(id=str(rid) if rid is not None else str(index), messages=msgs, source=source, meta=meta)


def read_examples(path: str | Path, fmt: str = "auto", *, language: str | None = None, prefix: str = "",
                  id_field: str | None = None) -> Iterator[Example]:
    """Read a file of any supported format into `Example`s; ids default to the 0-based row index."""
    if fmt not in FORMATS:
        raise CrosstuneError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    lang = normalize(language) if language else None
    chosen = None if fmt == "auto" else fmt
    for index, (line, row) in enumerate(read_rows(path)):
        loc = where(path, line)
        if chosen is None:
            try:
                chosen = detect_format(row, prefix)
            except CrosstuneError as e:
                raise CrosstuneError(f"{loc}: {e}") from None
        yield row_to_example(row, chosen, loc, index=index, language=lang, prefix=prefix,
                             source=str(path), id_field=id_field)


def example_to_row(ex: Example, fmt: str) -> dict:
    if fmt == "crosstune":
        return ex.to_dict()
    if fmt == "openai":
        return {"messages": [{"role": m.role, "content": m.content} for m in ex.messages]}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        return {"conversations": [{"from": back[m.role], "value": m.content} for m in ex.messages]}
    if fmt == "alpaca":
        fields = ex.meta.get("fields") or {"instruction": ex.instruction.content, "input": ""}
        return {"instruction": fields["instruction"], "input": fields["input"], "output": ex.response.content}
    raise CrosstuneError(f"cannot write format {fmt!r}; expected crosstune, openai, sharegpt or alpaca")


_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=False, separators=(", ", ": "))


def dumps_row(row: dict) -> str:
    """Canonical JSON for a row: the same row always gives the same bytes."""
    return _ROW_ENCODER.encode(row)  # one shared encoder: json.dumps with options builds a new one per call


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
