"""`encode_row` (layouts compiled per meta key order) writes exactly what the generic encoder writes."""

from __future__ import annotations

import pytest

from crosstune.data.build_encode import EscapedFields, _STR, encode_row, escape_utf8, escaped_user_text
from crosstune.data.formats import alpaca_user_text
from crosstune.data.io import dumps_row
from crosstune.data.schema import Example, Message


def reference(ex: Example) -> bytes:
    return (dumps_row({"id": ex.id, "messages": [m.to_dict() for m in ex.messages], "meta": ex.meta}) + "\n").encode()


NASTY = 'a"b\\c\n{x}\t\x00\x1f\x7f é 中 \u2028 \'q\' %s {0}'
METAS = [
    {"recipe": "crossin", "mode": "en2x", "source_ids": ["en:1", "zh:1"],
     "fields": {"instruction": NASTY, "input": "", "output": "out"}, "directive": "tag"},
    {"recipe": "crossin", "mode": "en2x", "source_ids": ["en:1", 3],  # same layout, a number in the list
     "fields": {"instruction": "a", "input": "", "output": "out"}, "directive": "tag"},
    {"recipe": "crossin", "mode": None, "source_ids": ["en:1"], "fields": {"instruction": "a", "input": "", "output": "o"},
     "directive": "tag"},
    {"recipe": "crossin", "mode": "x", "source_ids": "en:1",  # a string where the layout had a list
     "fields": {"instruction": "a", "input": "", "output": "out"}, "directive": "tag"},
    {"recipe": "crossin", "mode": "x", "source_ids": [], "fields": {"input": "", "instruction": "a", "output": "o"},
     "directive": 1.5},
    {"recipe": "crossin", "mode": "x", "source_ids": ("a", "b"), "fields": {"instruction": "a", "input": "", "output": "o"},
     "directive": float("nan")},
    {"recipe": "crossin", "mode": "x", "source_ids": ["a", "b"], "fields": {"instruction": "a", "input": "", "output": "o"},
     "directive": {"z": [1, {"q": None}]}},
    {"recipe": "crossin", "mode": "x", "source_ids": ["a", "b"], "fields": "flat", "directive": "tag"},
    {NASTY: NASTY, "x": True, "y": 12345678901234567890, "z": None},
    {NASTY: 5, "x": "s", "y": [1], "z": {}},
    {}, {"a": {}}, {"a": []}, {1: "x"}, {"a": {"b": {"c": {"d": ["e"]}}}}, {"a": {"b": {"c": {"d": "e"}}}},
    {"a": ["x", ["y"]]}, {"a": 10 ** 30, "b": -0.0, "c": 1e300, "d": False},
]


@pytest.mark.parametrize("messages", [
    [Message("user", 'u\n"x', "en"), Message("assistant", "out", None)],
    [Message("system", NASTY), Message("user", "q", "zh"), Message("assistant", NASTY, "zh")],
    [],
])
def test_encode_row_is_the_generic_encoding(messages):
    for meta in METAS:  # in sequence: later metas of an already compiled layout take the fallback paths
        ex = Example(f"id{NASTY}", messages, None, meta)
        assert encode_row(ex) == reference(ex), meta


def test_response_text_reused_only_when_it_is_the_same_text():
    out = "réponse\n"
    ex = Example("1", [Message("user", "q", "fr"), Message("assistant", out, "fr")], None,
                 {"fields": {"output": out, "other": "réponse"}, "n": None})
    assert encode_row(ex) == reference(ex)
    ex = Example("2", [], None, {"fields": {"output": out, "other": None}, "n": None})  # no response to reuse
    assert encode_row(ex) == reference(ex)


def test_escaped_pieces_compose_like_the_texts():
    for instr, inp in [(NASTY, NASTY), ("a", ""), ("a", "  "), ("", "b"), ('"', "\\")]:
        e_i, e_in = escape_utf8(instr), escape_utf8(inp)
        assert e_i == _STR(instr).encode()
        assert escaped_user_text(e_i, e_in, inp) == escape_utf8(alpaca_user_text(instr, inp))
    esc = EscapedFields(limit=2)
    fields = (NASTY, "", "x")
    want = (*fields, *map(escape_utf8, fields), alpaca_user_text(NASTY, ""),
            escape_utf8(alpaca_user_text(NASTY, "")), escape_utf8("en:1"))
    assert esc.get("en", "1", fields) == want
    table = esc.table("en")
    esc.get("en", "2", fields), esc.get("zh", "3", fields)  # past the limit: cleared (in place), still right
    assert esc.get("en", "1", fields) == want and esc.table("en") is table
    assert list(table) == ["1"]
    assert esc.get("en", "4", ("a", "b", "c"))[6:] == ("a\n\nb", escape_utf8("a\n\nb"), escape_utf8("en:4"))


def test_exclusion_lines_are_the_canonical_encoding(tmp_path):
    from crosstune.data.blocks import ExclusionSink

    sink = ExclusionSink(tmp_path / "x.jsonl")
    entries = [(NASTY, "too_long", "length", NASTY), ("2", "r", "b", ""), ("3", "r", "b", 7)]  # 7: not a string
    for e in entries:
        sink.add(*e)
    sink.close()
    want = "".join(dumps_row({"id": i, "reason": r, "block": b, "detail": d}) + "\n" for i, r, b, d in entries)
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == want
