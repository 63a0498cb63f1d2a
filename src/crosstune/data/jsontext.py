"""Parse JSON text from users safely: every failure (nesting past MAX_DEPTH, integers past 4300 digits, duplicate
keys, NUL bytes, lone surrogates, malformed text) becomes one `CrosstuneError` naming the location and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from crosstune.errors import CrosstuneError

MAX_DEPTH = 200  # rows are shallow; deeper nesting is an error, not a RecursionError
_BIG_INT = re.compile(r"-?\d{%d,}" % 4301)  # Python refuses int(str) past 4300 digits
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    row = dict(pairs)
    if len(row) != len(pairs):  # `dict` keeps the last value silently; a row with two "output"s is a bug
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return row


DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _key_before(text: str, pos: int) -> str | None:
    """The innermost object key whose value contains `pos` (approximately: the last key before it)."""
    keys = _KEY.findall(text, 0, pos)
    return keys[-1] if keys else None


def _structural(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(position, character, depth after it) of every character outside JSON strings, from `start`."""
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        yield i, ch, depth


def _too_deep(text: str, limit: int) -> int | None:
    """Position where nesting first exceeds `limit` (strings skipped), or None."""
    return next((i for i, ch, depth in _structural(text) if ch in "[{" and depth > limit), None)


def _field(key: str | None) -> str:
    return f" field '{key}'" if key is not None else ""


def _lone_surrogate(value: Any, key: str | None = None) -> str | None | bool:
    """The key of a string holding a lone UTF-16 surrogate (not encodable as UTF-8), False if none."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return key
        return False
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _lone_surrogate(v, k if isinstance(k, str) else key)
        if found is not False:
            return found
    return False


def parse_json(text: str, loc: str, what: str = "row") -> Any:
    """Parse one JSON document; every failure is one `CrosstuneError` naming `loc` and, when it can, the field."""
    nul = text.find("\x00")
    if nul >= 0:
        raise CrosstuneError(f"{loc}: a NUL byte at column {nul + 1}; expected UTF-8 JSON text (is the file "
                             "UTF-16 or binary?)")
    bad = _too_deep(text, MAX_DEPTH) if text.count("[") + text.count("{") > MAX_DEPTH else None
    if bad is not None:
        raise CrosstuneError(f"{loc}{_field(_key_before(text, bad))}: JSON nested more than {MAX_DEPTH} levels "
                             f"deep (column {bad + 1}); expected a {what} of strings and small objects")
    try:
        value = DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise CrosstuneError(f"{loc}: malformed JSON ({e.msg} at column {e.colno})") from None
    except _DuplicateKey as e:
        raise CrosstuneError(f"{loc} field '{e.key}': the key appears twice in one object; expected each key "
                             "once") from None
    except RecursionError:
        raise CrosstuneError(f"{loc}: JSON nested too deeply; expected a {what} of strings and small "
                             "objects") from None
    except ValueError as e:  # Python 3.11+: an integer literal longer than 4300 digits
        m = _BIG_INT.search(text)
        if m is None:
            raise CrosstuneError(f"{loc}: unreadable JSON value ({e})") from None
        raise CrosstuneError(f"{loc}{_field(_key_before(text, m.start()))}: an integer with "
                             f"{len(m.group().lstrip('-')):,} digits (column {m.start() + 1}); numbers past "
                             "4300 digits are not supported, store it as a string") from None
    if _SURROGATE_ESCAPE.search(text):  # only a \\uD8xx escape can smuggle a lone surrogate into a str
        key = _lone_surrogate(value)
        if key is not False:
            raise CrosstuneError(f"{loc}{_field(key)}: a lone UTF-16 surrogate escape (\\ud800-\\udfff without "
                                 "its pair) is not text; expected valid Unicode")
    return value


def array_element(text: str, pos: int, loc: str) -> tuple[Any, int]:
    """The JSON value starting at `pos` and where it ends; on any failure `parse_json` names the problem."""
    try:
        value, end = DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as e:
        if "\x00" not in text[pos:e.pos + 1]:
            raise CrosstuneError(f"{loc}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        parse_json(text[pos:_bracket_end(text, pos)], loc)  # raises, naming the NUL byte
        raise CrosstuneError(f"{loc}: malformed JSON ({e.msg})") from None
    except (_DuplicateKey, RecursionError, ValueError) as e:
        parse_json(text[pos:_bracket_end(text, pos)], loc)  # raises, naming the field
        raise CrosstuneError(f"{loc}: unreadable JSON row ({type(e).__name__})") from None
    if _SURROGATE_ESCAPE.search(text, pos, end) or _depth_suspect(text, pos, end):
        parse_json(text[pos:end], loc)  # the checks the fast path skipped
    return value, end


def _depth_suspect(text: str, pos: int, end: int) -> bool:
    return text.count("[", pos, end) + text.count("{", pos, end) > MAX_DEPTH


def _bracket_end(text: str, pos: int) -> int:
    """Where the JSON value starting at `pos` ends (best effort, for error messages)."""
    for i, ch, depth in _structural(text, pos):
        if depth == 0 and ch in "]}":
            return i + 1
        if depth == 0 and ch == ",":
            return i
    return len(text)
