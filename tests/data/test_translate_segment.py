"""Segmentation, protection and keep rules of `crosstune.data.translate` (no engine needed)."""

from __future__ import annotations

import re

from crosstune.data.translate.pipeline import TextTranslator, Unit
from crosstune.data.translate.protect import KINDS, compile_spans, mask, missing_numbers, pieces, unmask
from crosstune.data.translate.rules import keep_reason
from crosstune.data.translate.segment import fit, split_text

PATTERN = compile_spans(list(KINDS))


def test_split_keeps_every_character_and_the_layout():
    text = ("Here are 3 tips:\n\n1. Eat well. Dr. Smith says so, e.g. fruit.\n   - Sleep 8 hours!  \n\n"
            "```python\nprint('Keep me. Untranslated.')\n```\nx = foo(3);\n| Name | Age |\n|---|---|\n| John Smith | 30 |\n"
            "1.No space after the marker.")
    pieces_ = split_text(text)
    assert "".join(p.text for p in pieces_) == text
    sent = [p.text for p in pieces_ if p.translate]
    assert sent == ["Here are 3 tips:", "Eat well.", "Dr. Smith says so, e.g. fruit.", "Sleep 8 hours!", "Name",
                    "Age", "John Smith", "No space after the marker."]
    kept = "".join(p.text for p in pieces_ if not p.translate)
    assert "print('Keep me. Untranslated.')" in kept and "x = foo(3);" in kept and "\n   - " in kept


def test_code_lines_and_the_indented_block_after_them_are_kept():
    text = ("Here is the function:\ndef lcm(a, b):\n  if a > b:\n    greater = a\n  return greater\n\n"
            "print(lcm(15, 18))\n# Output: 90\nIt returns the least common multiple.")
    pieces_ = split_text(text)
    assert "".join(p.text for p in pieces_) == text
    assert [p.text for p in pieces_ if p.translate] == ["Here is the function:", "It returns the least common multiple."]


def test_fit_splits_at_clauses_then_words_and_refuses_an_unbreakable_word():
    s = "This is long, very long; and longer still with words"
    out = fit(s, 20, len)
    assert "".join(p.text for p in out) == s
    assert all(len(p.text) <= 20 for p in out if p.translate)
    assert [p.text for p in out if p.translate][:2] == ["This is long,", "very long;"]
    assert fit("a" * 30 + " b", 20, len) is None


def test_mask_unmask_round_trip_and_sentinel_checks():
    text = "Use `foo()` at https://a.com/x, mail me@x.org, fill {name} and %s in <b>bold</b> **now** (cm^2)."
    m = mask(text, PATTERN)
    assert m.spans == ["`foo()`", "https://a.com/x", "me@x.org", "{name}", "%s", "<b>", "</b>", "**", "**", "cm^2"]
    assert not re.search(r"[`{}<>%*]|https|@", m.text)
    assert unmask(m.text, m) == text
    assert unmask(m.text.replace("XX3XX", ""), m) is None  # a lost sentinel
    assert unmask(m.text + " XX0XX", m) is None  # a repeated one
    assert mask("already XX1XX here", PATTERN) is None  # sentinel-like source text: per-piece handling


def test_placeholders_with_spaces_are_protected():
    m = mask("Unlock your radiance with {Brand Name} in {0} days.", PATTERN)
    assert m.spans == ["{Brand Name}", "{0}"]


def test_placeholder_rules_leave_percentages_and_currency_alone():
    m = mask("Save 20% during sales and pay $5 or $10 for a ____ ticket.", PATTERN)
    assert m.spans == ["____"]


def test_numbers_are_checked_with_localized_decimals_accepted():
    assert missing_numbers("Pi is 3.14 and 1,000 people came in 1969.", "Pi é 3,14 e 1.000 pessoas em 1969.") == []
    assert missing_numbers("It is 800 km (500 mi) long.", "Tem 800 km de comprimento.") == ["500"]
    assert pieces("About 800 km (500 mi).", PATTERN) == [("About ", True), ("800", False), (" km (", True),
                                                         ("500", False), (" mi).", True)]


def test_keep_rules():
    assert keep_reason("") == "empty"
    assert keep_reason("3x + 5 = 9") == "no_letters"
    assert keep_reason("def f(x):\n    return x * 2") == "code"
    assert keep_reason('{"name": "Ana", "age": 30}') == "json"
    assert keep_reason("Write a function that doubles x.") is None
    assert keep_reason("My vacation is in _______.") is None
    assert keep_reason("def f(x):\n    return x", keep_code=False) is None


def test_plan_marks_too_long_texts():
    tt = TextTranslator(None, 20, len, PATTERN)
    plan = tt.plan("A normal start. " + "x" * 50)
    assert plan.status == "too_long" and "50-character word" in plan.detail
    plan = tt.plan("Short one. Another short one.")
    assert plan.status == "ok" and sum(isinstance(u, Unit) for u in plan.parts) == 2
