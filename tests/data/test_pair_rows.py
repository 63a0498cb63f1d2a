"""`PairRow` (CrossIn's rows without an `Example`): its plain fields say what its line says, and every built-in
filter decides on it exactly as on the same row built as an `Example`."""

from __future__ import annotations

import numpy as np

from crosstune.config import validate
from crosstune.data.blocks import ExclusionSink, PairRow, Row, run_blocks
from crosstune.data.build_encode import encode_row
from crosstune.data.filters import FiltersConfig, make_filters
from crosstune.data.filters.dedup import row_digest, row_text
from crosstune.data.recipes.crossin import CrossInParams, build
from crosstune.schema import Example, Message
from tests.data.recipe_slices import corpus, slices  # noqa: F401  (fixtures)

MODES = {"base": "all", "en2x": 150, "x2en": 150, "translate": 150}


def crossin_rows(corpus, **extra):  # noqa: F811
    p = validate(CrossInParams, {"languages": ["en", "zh", "vi"], "modes": MODES, **extra}, "recipe")
    return list(build(p, corpus, np.random.default_rng(0), []))


def plain(row: PairRow) -> Row:
    """The same row as the generic path carries it: an `Example` (parsed from the line) and no line."""
    return Row(Example.from_dict(row.example.to_dict()), row.checks)


def test_pair_rows_fields_are_their_lines(corpus):  # noqa: F811
    rows = crossin_rows(corpus)
    assert {type(r) for r in rows} == {PairRow} and len(rows) > 400
    for r in rows:
        ex = r.example
        assert encode_row(ex) == r.line  # the parsed example writes the same line back (UTF-8)
        assert r.id == ex.id and (r.user, r.response) == tuple(m.content for m in ex.messages)
        assert [m.role for m in ex.messages] == ["user", "assistant"]
        assert r.key == (ex.meta["mode"], ex.meta["instruction_language"], ex.meta["response_language"])
        twin = plain(r)
        assert row_digest(twin) == row_digest(r) and row_text(twin) == row_text(r)
        assert twin.key == r.key and twin.id == r.id


def _run(rows, filters: dict):
    cfg = validate(FiltersConfig, filters, "filters")
    blocks = make_filters(cfg, ["en", "zh", "vi"])
    sink = ExclusionSink()
    kept = [r.id for r in run_blocks(blocks, rows, sink)]
    return kept, [e.to_dict() for e in sink.items], [b.report() for b in blocks]


def test_built_in_filters_decide_the_same_on_pair_rows(corpus):  # noqa: F811
    rows = crossin_rows(corpus)
    # limits that cut both sides, whitespace-edged texts, repeats from draws with replacement, language ID
    for filters in ({"length": {"min_chars": 40, "max_chars": 120}, "langid": None},
                    {"length": {"min_chars": 30, "sides": ["assistant"]}, "exact_dedup": {"enabled": True}},
                    {"near_dedup": {"threshold": 0.5}, "langid": None},
                    {"langid": {"backend": "pycld2", "drop_undetermined": True}}):
        fast = _run(rows, filters)
        generic = _run([plain(r) for r in rows], filters)
        assert fast == generic, filters
        assert fast[1], filters  # something was dropped


def test_a_block_that_replaces_the_example_is_written_from_it(corpus, tmp_path):  # noqa: F811
    row = crossin_rows(corpus)[0]
    ex = row.example
    row.example = Example(ex.id, [Message("user", "changed", "en"), ex.messages[1]], None, dict(ex.meta))
    row.line = None
    assert row.example.messages[0].content == "changed"
    assert encode_row(row.example).startswith(f'{{"id": "{ex.id}", "messages": [{{"role": "user", "content": '
                                              '"changed"'.encode())
