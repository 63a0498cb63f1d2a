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

from crosstune.jsonl import _C_ROW_ENCODER, dumps_row
from crosstune.schema import alpaca_user_text

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


# -- rows whose recipe writes their line from escaped pieces (CrossIn: each corpus text escaped and UTF-8 encoded
#    once, not once per row and field it appears in; the line is joined as bytes, so the ~1 KB of a Chinese or
#    Vietnamese row is never widened into a str and encoded again). The generic `encode_row` stays the reference;
#    tests compare the two.

def escape_utf8(text: str) -> bytes:
    """`text` as a JSON string literal (as `json.dumps(ensure_ascii=False)` writes it), UTF-8."""
    return _STR(text).encode()


class EscapedFields:
    """Per (language, item), computed on first use and kept (a corpus in memory is reused across modes): the
    item's (instruction, input, output), those JSON-escaped in UTF-8, the Alpaca user text (`alpaca_user_text`,
    one str object for every row that shows or checks it, so its hash is computed once), that text escaped, and
    the escaped source id `"lang:item"`. Cleared past `limit` items, so a spilled corpus stays bounded.

    Hot loops take a language's `table(lang)` (item -> that tuple; cleared in place, so it stays valid) and
    call `fill` on a miss: one dict lookup per row and field set instead of a method call."""

    def __init__(self, limit: int = 1 << 18):
        self.limit = limit
        self._tables: dict[str, dict[str, tuple]] = {}
        self._n = 0

    def table(self, lang: str) -> dict[str, tuple[str, str, str, bytes, bytes, bytes, str, bytes, bytes]]:
        return self._tables.setdefault(lang, {})

    def fill(self, lang: str, item: str, fields: tuple[str, str, str]
             ) -> tuple[str, str, str, bytes, bytes, bytes, str, bytes, bytes]:
        """(instruction, input, output, their escapes, user text, e_user text, e_source id) of (lang, item), not
        in its table yet. The e_user text is the escaped instruction object itself when there is no input."""
        if self._n >= self.limit:
            for t in self._tables.values():
                t.clear()
            self._n = 0
        E = escape_utf8
        instr, inp, out = fields
        ei, einp = E(instr), E(inp)
        e = self.table(lang)[item] = (instr, inp, out, ei, einp, E(out), alpaca_user_text(instr, inp),
                                      escaped_user_text(ei, einp, inp), E(f"{lang}:{item}"))
        self._n += 1
        return e

    def get(self, lang: str, item: str, fields: tuple[str, str, str]) -> tuple:
        e = self.table(lang).get(item)
        return self.fill(lang, item, fields) if e is None else e


def escaped_user_text(e_instruction: bytes, e_input: bytes, inp: str) -> bytes:
    """`escape_utf8(alpaca_user_text(instruction, inp))` from the escaped parts (escaping is per character)."""
    return b"".join((e_instruction[:-1], b"\\n\\n", e_input[1:])) if inp.strip() else e_instruction
