"""Prompt sets for generation runs: `[LANG=]FILE` specs -> prompt items with a language, and response directives.

A file is any container `crosstune.data.io.read_rows` reads (JSONL, JSON, Parquet, a saved HF dataset). A row's
prompt is its `messages`/`conversations` (up to the last user turn; a trailing reference answer is dropped), else
`instruction` (+ `input`, Alpaca), else `prompt`, else `question`. Its language is `LANG=` of the spec, else the row's
`language` field, else the last user message's `language`; with none of them the error names the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crosstune.data.formats import alpaca_user_text, row_to_example
from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where
from crosstune.languages import normalize

DIRECTIVES = ("none", "tag", "answer_in")
TEXT_FIELDS = ("prompt", "question", "text")


@dataclass(frozen=True)
class PromptItem:
    """One prompt: `messages` end with the user turn the directive is appended to."""

    id: str
    index: int  # 0-based row position in its file (aligns parallel files line by line)
    language: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    source: str  # "file:line"

    @property
    def user_text(self) -> str:
        return self.messages[-1][1]


def parse_prompt_spec(spec: str) -> tuple[str | None, str]:
    """`zh=data/test_zh.jsonl` -> ("zh", path); a bare path -> (None, path). `LANG` is any code `normalize` takes."""
    head, sep, tail = spec.partition("=")
    if sep and head and "/" not in head and "\\" not in head and not Path(spec).exists():
        try:
            return normalize(head), tail
        except CrosstuneError as e:
            raise CrosstuneError(f"--prompts {spec!r}: {e}") from None
    return None, spec


def resolve_prompt_spec(spec: str, lookup, field: str = "", what: str = "") -> str:
    """`[LANG=]FILE` with FILE found by the data-root rule (`lookup`: a `crosstune.paths.Lookup`)."""
    lang, path = parse_prompt_spec(spec)
    found = lookup.spelled(path, field, what)
    return f"{lang}={found}" if lang else found


def _row_language(row: dict, loc: str) -> str | None:
    value = row.get("language") or row.get("lang")
    if value is None:
        return None
    if not isinstance(value, str):
        raise CrosstuneError(f"{loc} field 'language': expected a language code string, got {type(value).__name__}")
    try:
        return normalize(value)
    except CrosstuneError as e:
        raise CrosstuneError(f"{loc} field 'language': {e}") from None


def _row_messages(row: dict, loc: str, prompt_field: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """The conversation up to its last user turn, and the language a message carries (if any)."""
    if prompt_field:
        if prompt_field not in row:
            raise CrosstuneError(f"{loc}: missing field '{prompt_field}' (--prompt-field)")
        value = row[prompt_field]
    elif "messages" in row or "conversations" in row:
        fmt = "openai" if "messages" in row else "sharegpt"
        ex = row_to_example(row, fmt, loc, index=0)
        msgs = list(ex.messages)
        while msgs and msgs[-1].role == "assistant":  # a reference answer is not part of the prompt
            msgs.pop()
        if not msgs or msgs[-1].role != "user":
            raise CrosstuneError(f"{loc}: the conversation has no user turn to answer")
        return [(m.role, m.content) for m in msgs], msgs[-1].language
    elif "instruction" in row:
        instr, inp = row["instruction"], row.get("input") or ""
        if not isinstance(instr, str) or not isinstance(inp, str):
            raise CrosstuneError(f"{loc} field 'instruction'/'input': expected strings")
        value = alpaca_user_text(instr, inp)
    else:
        key = next((k for k in TEXT_FIELDS if k in row), None)
        if key is None:
            raise CrosstuneError(f"{loc}: no prompt found in fields {sorted(row)}; expected 'messages', "
                                 f"'conversations', 'instruction', {', '.join(repr(k) for k in TEXT_FIELDS)}, "
                                 "or name one with --prompt-field")
        value = row[key]
    if isinstance(value, list):  # a prompt field holding chat messages
        return _row_messages({"messages": value}, loc, None)
    if not isinstance(value, str) or not value.strip():
        raise CrosstuneError(f"{loc}: the prompt is empty or not a string ({type(value).__name__})")
    return [("user", value)], None


def read_prompt_set(spec: str, *, prompt_field: str | None = None, limit: int | None = None,
                    id_field: str = "id", on_bad=None) -> Iterator[PromptItem]:
    """Prompt items of one `[LANG=]FILE` spec, in file order (at most `limit`); stops reading at the limit.
    A bad row raises a `CrosstuneError` naming file and line, unless `on_bad(location, reason)` is given: then the
    row is reported to it and skipped (a JSONL line that is not JSON too)."""
    lang, path = parse_prompt_spec(spec)
    rows = _lenient_jsonl(path, on_bad) if on_bad and str(path).endswith((".jsonl", ".jsonl.gz")) else read_rows(path)
    for index, (line, row) in enumerate(rows):
        if limit is not None and index >= limit:
            return
        if row is None:  # a line the lenient reader already reported
            continue
        loc = where(path, line)
        try:
            msgs, msg_lang = _row_messages(row, loc, prompt_field)
            language = lang or _row_language(row, loc) or (normalize(msg_lang) if msg_lang else None)
            if language is None:
                raise CrosstuneError(f"{loc}: no language for this prompt; give it as LANG=FILE "
                                     f"(e.g. --prompts en={path}) or add a 'language' field to each row")
        except CrosstuneError as e:
            if on_bad is None:
                raise
            on_bad(loc, str(e).removeprefix(f"{loc}: ").removeprefix(f"{loc} "))
            continue
        rid = row.get(id_field)
        yield PromptItem(id=str(rid) if rid is not None else f"{Path(path).stem}-{index}", index=index,
                         language=language, messages=tuple(msgs), source=loc)


def _lenient_jsonl(path: str, on_bad) -> Iterator[tuple[int, dict]]:
    """JSONL rows; a line that is not a JSON object goes to `on_bad` and comes out as `(line, None)`, so row
    positions (and `--limit`) still count it and parallel files stay aligned by line."""
    import gzip
    import json

    try:
        f = gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")
    except OSError as e:
        raise CrosstuneError(f"{path}: cannot read ({e})") from None
    with f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                if not isinstance(row, dict):
                    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            except (UnicodeDecodeError, ValueError) as e:
                on_bad(where(path, line_no), f"not a JSON object ({e})")
                row = None
            yield line_no, row


def directed_text(text: str, language: str, directive: str, target: str) -> str:
    """The user text with the response-language signal, built by the data recipes' own marking code so an
    evaluation prompt reads exactly like a training row: CrossIn's `[x]` tag, X-Instruction's English
    " Answer in {Language}.", or nothing."""
    from crosstune.data.recipes.common import Marking, marked_user_text

    if directive == "none":
        return text
    if directive == "tag":
        return marked_user_text(text, "", language, target, Marking(style="tag"))
    if directive == "answer_in":
        return marked_user_text(text, "", language, target, Marking(style="directive", directive_language="english"))
    raise CrosstuneError(f"--directive {directive!r}: expected one of {', '.join(DIRECTIVES)}")
