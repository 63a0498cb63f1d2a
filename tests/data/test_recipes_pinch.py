"""Pinch of multilinguality: P% swaps with a fixed budget, language-budget sweep, bilingual 50/50."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.blocks import ExclusionSink, Quota
from crosstune.data.parallel import ParallelCorpus
from crosstune.data.recipes.common import spread_evenly
from crosstune.data.recipes.pinch import BilingualParams, BudgetParams, PinchParams, build_bilingual, \
    build_budget, build_pinch
from crosstune.data.recipes.sources import Corpus
from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError
from tests.data.recipe_slices import corpus, slices  # noqa: F401  (fixtures)

PAPER_LANGS = ["ar", "zh", "cs", "et", "fi", "he", "hi", "it", "ru", "es", "sw"]  # the 11 non-English


def run(builder, model, params, corpus, seed=0):  # noqa: F811
    log: list[str] = []
    out = builder(validate(model, params, "recipe"), corpus, np.random.default_rng(seed), log)
    quota = Quota(out.quotas)
    return list(quota.run(out.rows, ExclusionSink())), out.quotas, log


def numbered_corpus(n: int, langs: list[str]) -> Corpus:
    """n items in 12 languages: the paper's languages have no shared data here, only the arithmetic is tested."""
    by_lang = {lang: [Example(str(i), [Message("user", f"{lang} q{i}", lang), Message("assistant", f"a{i}", lang)])
                      for i in range(n)] for lang in langs}
    return Corpus(ParallelCorpus.from_examples(by_lang), {lang: False for lang in langs})


def test_spread_is_as_even_as_possible():
    counts = spread_evenly(40, PAPER_LANGS, np.random.default_rng(0))
    assert sum(counts.values()) == 40 and sorted(Counter(counts.values()).items()) == [(3, 4), (4, 7)]


def test_paper_p1_on_4640_spreads_over_11_languages_and_logs_rounding():
    c = numbered_corpus(4640, ["en", *PAPER_LANGS])
    rows, quotas, log = run(build_pinch, PinchParams, {"languages": PAPER_LANGS, "percent": 1}, c)
    assert len(rows) == 4640 and quotas["en"] == 4640 - 46
    assert any("P=1% of 4,640 = 46.4 -> 46 (round)" in line for line in log)
    rows, quotas, _ = run(build_pinch, PinchParams, {"languages": PAPER_LANGS, "count": 40}, c)
    langs = Counter(r.example.meta["response_language"] for r in rows)
    assert langs["en"] == 4600 and sum(v for k, v in langs.items() if k != "en") == 40
    assert sorted(Counter(v for k, v in langs.items() if k != "en").items()) == [(3, 4), (4, 7)]
    items = [r.example.meta["source_ids"][0].split(":")[1] for r in rows]
    assert len(set(items)) == 4640  # each item once, in one language


@pytest.mark.parametrize("total, rounding, expected", [(4600, "ceil", 46), (4650, "round", 47), (4650, "floor", 46),
                                                       (4640, "ceil", 47)])
def test_rounding_is_exact(total, rounding, expected):
    c = numbered_corpus(total, ["en", "zh"])
    _, quotas, _ = run(build_pinch, PinchParams, {"languages": ["zh"], "percent": 1, "total": total,
                                                  "rounding": rounding}, c)
    assert quotas["zh"] == expected and quotas["en"] == total - expected


def test_pinch_on_alpaca_slice(corpus):  # noqa: F811
    rows, quotas, _ = run(build_pinch, PinchParams, {"languages": ["zh", "vi"], "percent": 10, "total": 200}, corpus)
    assert quotas == {"en": 180, "zh": 10, "vi": 10}
    langs = Counter(r.example.meta["response_language"] for r in rows)
    assert langs == {"en": 180, "zh": 10, "vi": 10}
    for r in rows:
        lang, item = r.example.meta["source_ids"][0].split(":")
        assert r.example.messages[1].content == corpus.fields(lang, item)[2]


def test_pinch_errors(corpus):  # noqa: F811
    for bad, msg in [({"languages": ["zh"], "percent": 150}, "within 0..100"),
                     ({"languages": ["zh"], "percent": -1}, "within 0..100"),
                     ({"languages": ["zh"], "percent": 1, "count": 3}, "exactly one of"),
                     ({"languages": ["zh"], "percent": 1, "unseen": ["zh"]}, "both seen"),
                     ({"languages": ["zh"], "percent": 1, "total": 10_000}, "replace: true")]:
        with pytest.raises(CrosstuneError, match=msg):
            run(build_pinch, PinchParams, bad, corpus)


def test_language_budget_sweep_and_bilingual(corpus):  # noqa: F811
    for k in (1, 2, 3):
        rows, quotas, _ = run(build_budget, BudgetParams, {"order": ["en", "zh", "vi"], "num_languages": k,
                                                           "total": 90}, corpus)
        assert len(rows) == 90 and list(quotas) == ["en", "zh", "vi"][:k]
        assert set(quotas.values()) == {90 // k}
    with pytest.raises(CrosstuneError, match="within 1..3"):
        run(build_budget, BudgetParams, {"order": ["en", "zh", "vi"], "num_languages": 4}, corpus)
    rows, quotas, _ = run(build_bilingual, BilingualParams, {"languages": ["zh", "vi"], "total": 100}, corpus)
    assert quotas == {"zh": 50, "vi": 50} and len(rows) == 100


def test_filtered_rows_are_refilled_to_the_budget(corpus):  # noqa: F811
    from crosstune.data.filters.length import LengthConfig, LengthFilter

    out = build_pinch(validate(PinchParams, {"languages": ["zh"], "percent": 50, "total": 100}, "r"), corpus,
                      np.random.default_rng(0), [])
    sink = ExclusionSink()
    strict = LengthFilter(LengthConfig(min_chars=60, sides=["assistant"]))  # drops many short rows
    rows = list(Quota(out.quotas).run(strict.run(out.rows, sink), sink))
    assert Counter(r.example.meta["response_language"] for r in rows) == {"en": 50, "zh": 50}
    assert sink.items and all(e.reason == "too_short" for e in sink.items)
