"""Task templates run in a bounded sandbox: the probe's payloads (and their cousins) end in one clear error, fast,
while ordinary templates render as before."""

from __future__ import annotations

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval import templating

PAYLOADS = [  # the three first
    ("{% for x in range(10**9) %}{% endfor %}", "range() got 1000000000"),
    ("{{ range(10**9)|list|length }}", "range() got 1000000000"),
    ("{{ 'a' * 10**10 }}", "'*' would make 10,000,000,000 characters"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "more than 1,000,000 steps"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "'~'"),
    ("{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "'+'"),
    ("{{ [0] * 10**9 }}", "'*' would make"),
    ("{{ 'a'|center(10**10) }}", "center() got 10000000000"),
    ("{{ 'a'.ljust(10**10) }}", "ljust() got 10000000000"),
    ("{{ 'x'|indent(10**9) }}", "indent() got"),
    ("{{ '%0100000000d' % 1 }}", "'%' format with a width"),
    ("{{ '{:>100000000}'.format(1) }}", "a format with a width"),
    ("{{ '%.100000000f'|format(1.0) }}", "a format with a width"),
    ("{{ ('x' * 10000)|replace('', 'y' * 1000) }}", "replace would make"),
    ("{{ 7 ** 9999999 }}", "too large a number"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
    ("{{ lipsum(10) }}", "lipsum"),
]


@pytest.mark.parametrize("source, message", PAYLOADS, ids=[p[0][:40] for p in PAYLOADS])
def test_payload_is_one_clear_error(source, message):
    with pytest.raises(CrosstuneError) as e:
        templating.render(source, {"row": {}}, "task.yaml:4", "prompts.default")
    assert str(e.value).startswith("task.yaml:4 field 'prompts.default': the template")
    assert message in str(e.value)


def test_expressions_are_bounded_too():
    with pytest.raises(CrosstuneError, match="range\\(\\) got 1000000000"):
        templating.evaluate("range(10**9) | list", {"row": {}}, "task.yaml:9", "choices")
    assert templating.evaluate("range(3)", {}, "t", "choices") == [0, 1, 2]


def test_ordinary_templates_unchanged():
    src = ("{{ q }}|{% for c in choices %}{{ letters[loop.index0] }}. {{ c }};{% endfor %}|{{ range(3)|list }}|"
           "{{ 'ab' * 2 }}|{{ '%03d' % 7 }}|{{ '{:>3}'.format(1) }}|{{ 2 ** 10 }}|{{ 'a' ~ 'b' }}|{{ x|replace('a', 'b') }}")
    out = templating.render(src, {"q": "Q?", "choices": ["x", "y"], "x": "aa", "row": {}}, "t", "f")
    assert out == "Q?|A. x;B. y;|[0, 1, 2]|abab|007|  1|1024|ab|bb"
