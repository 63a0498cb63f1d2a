"""The output line of one built row: `{"id", "messages", "meta"}` as the canonical encoder writes it, faster.

`encode_row(example)` gives the same bytes as `dumps_row(example.to_dict()) + "\\n"` (without `source`, as a built
row has none) and is checked against it in tests. It is specialised per meta layout: a recipe's rows share one
key order, so the first row of each layout compiles a small encoder for it (an f-string around the C string
escaper, as `json.dumps` would write each value); a row whose values do not fit the compiled layout (another key
order, a list where a string was, a non-string in a list of strings) falls back to the generic C encoder. A meta
string that is the response's own text object (CrossIn's `meta.fields.output`) reuses the escaped response.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from crosstune.data.io import _C_ROW_ENCODER, dumps_row

_STR = json.encoder.encode_basestring  # the C string escaper `json.dumps(ensure_ascii=False)` itself uses
_MAX_LAYOUTS = 256
_layouts: dict[tuple, Callable | None] = {}
_NO_TEXT = object()  # no response: nothing to reuse


def _generic(value) -> str:
    return "".join(_C_ROW_ENCODER(value, 0)) if _C_ROW_ENCODER is not None else dumps_row(value)


class _Layout:
    """Generated code for one meta layout: statements (guards, unpacking) and the f-string's parts."""

    def __init__(self) -> None:
        self.stmts: list[str] = []
        self.consts: dict[str, object] = {}

    def const(self, value) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def value(self, name: str, sample, depth: int) -> str:
        """The f-string part writing `name` as `sample` is written; guards and unpacking go to `stmts`."""
        if type(sample) is str:  # the escaper raises TypeError on a non-string: no guard needed
            return f"{{rce if {name} is rc else S({name})}}"
        if type(sample) is list and sample and all(type(x) is str for x in sample):
            self.stmts.append(f"if type({name}) is not list: return None")  # elements: the escaper checks
            return f'[{{", ".join(map(S, {name}))}}]'
        if type(sample) is dict and sample and depth < 2 and all(type(k) is str for k in sample):
            return self.obj(name, sample, depth + 1)
        return f"{{G({name})}}"  # anything else (numbers, null, deeper structures): the generic C encoder

    def obj(self, name: str, sample: dict, depth: int) -> str:
        keys = tuple(sample)
        subs = [f"{name}_{j}" for j in range(len(keys))]
        self.stmts.append(f"if type({name}) is not dict or tuple({name}) != {self.const(keys)}: return None")
        self.stmts.append(f"{', '.join(subs)}, = {name}.values()")
        parts = [f"{{{self.const(_STR(k))}}}: {self.value(sub, v, depth)}" for k, sub, v in
                 zip(keys, subs, sample.values())]
        return "{{" + ", ".join(parts) + "}}"


def _compile(meta: dict) -> Callable | None:
    """An encoder `(meta, rc, rce) -> str` for metas with `meta`'s keys in its order and values like its values;
    it returns None (for the caller to fall back) when a guarded value does not fit."""
    if not meta or not all(type(k) is str for k in meta):
        return None
    layout = _Layout()
    body = layout.obj("m", meta, 0)
    code = "def enc(m, rc, rce):\n" + "".join(f"    {s}\n" for s in layout.stmts) + f"    return f'{body}'\n"
    scope = {"S": _STR, "G": _generic, **layout.consts}
    exec(code, scope)  # noqa: S102  (generated from the layout's shape; keys are constants, not source text)
    return scope["enc"]


def _meta_json(meta, rc: str, rce: str) -> str:
    if type(meta) is not dict:
        return dumps_row(meta)
    try:
        layout = tuple(meta)
        enc = _layouts[layout]
    except KeyError:
        enc = _compile(meta) if len(_layouts) < _MAX_LAYOUTS else None
        _layouts[layout] = enc
    except TypeError:  # an unhashable key cannot be in a JSON object anyway: let the generic encoder say so
        enc = None
    if enc is not None:
        try:
            out = enc(meta, rc, rce)
        except TypeError:  # a value of another type than the layout's first row had
            out = None
        if out is not None:
            return out
    return dumps_row(meta)


def encode_row(ex) -> bytes:
    """One output line of `train.jsonl` (UTF-8, newline-terminated)."""
    S = _STR
    msgs = ex.messages
    rc = rce = _NO_TEXT
    parts = []
    for m in msgs:
        c = S(m.content)
        parts.append(f'{{"role": {S(m.role)}, "content": {c}, '
                     f'"language": {"null" if m.language is None else S(m.language)}}}')
        rc, rce = m.content, c
    return f'{{"id": {S(ex.id)}, "messages": [{", ".join(parts)}], "meta": {_meta_json(ex.meta, rc, rce)}}}\n'.encode()


# -- rows whose recipe writes their line from escaped pieces (CrossIn: each corpus text escaped once, not once per
#    row and field it appears in). The generic `encode_row` stays the reference; tests compare the two.

class EscapedFields:
    """JSON-escaped (instruction, input, output) per (language, item), escaped on first use and kept (a corpus
    in memory is reused across modes); cleared past `limit` items, so a spilled corpus stays bounded."""

    def __init__(self, limit: int = 1 << 18):
        self.limit = limit
        self._memo: dict[tuple[str, str], tuple[str, str, str]] = {}

    def get(self, lang: str, item: str, fields: tuple[str, str, str]) -> tuple[str, str, str]:
        key = (lang, item)
        e = self._memo.get(key)
        if e is None:
            if len(self._memo) >= self.limit:
                self._memo.clear()
            S = _STR
            e = self._memo[key] = (S(fields[0]), S(fields[1]), S(fields[2]))
        return e


def escaped_user_text(e_instruction: str, e_input: str, inp: str) -> str:
    """`_STR(alpaca_user_text(instruction, inp))` from the escaped parts (escaping is per character)."""
    return f"{e_instruction[:-1]}\\n\\n{e_input[1:]}" if inp.strip() else e_instruction


def escaped_concat(a: str, b: str) -> str:
    """`_STR(x + y)` from `_STR(x)` and `_STR(y)`."""
    return f"{a[:-1]}{b[1:]}"


def pair_line(e_id: str, e_user: str, e_user_lang: str, e_response: str, e_response_lang: str, meta_json: str) -> str:
    """The line of a row `{"id", "messages": [user, assistant], "meta"}` from escaped parts (not yet UTF-8)."""
    return (f'{{"id": {e_id}, "messages": [{{"role": "user", "content": {e_user}, "language": {e_user_lang}}}, '
            f'{{"role": "assistant", "content": {e_response}, "language": {e_response_lang}}}], '
            f'"meta": {meta_json}}}\n')
