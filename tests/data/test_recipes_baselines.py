"""Monolingual and multilingual baselines on the real Alpaca slice."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.blocks import ExclusionSink, Quota
from crosstune.data.recipes.baselines import MonolingualParams, MultilingualParams, build_monolingual, \
    build_multilingual, largest_remainder
from crosstune.errors import CrosstuneError
from tests.data.recipe_slices import corpus, slices  # noqa: F401  (fixtures)


def run(builder, model, params, corpus):  # noqa: F811
    out = builder(validate(model, params, "recipe"), corpus, np.random.default_rng(0), [])
    if hasattr(out, "quotas"):
        return list(Quota(out.quotas).run(out.rows, ExclusionSink()))
    return list(out)


def test_monolingual(corpus):  # noqa: F811
    rows = run(build_monolingual, MonolingualParams, {"language": "zh", "total": 50}, corpus)
    assert len(rows) == 50 and {r.example.meta["response_language"] for r in rows} == {"zh"}
    assert len(run(build_monolingual, MonolingualParams, {"language": "zh"}, corpus)) == 300


def test_multilingual_weights_and_temperature(corpus):  # noqa: F811
    rows = run(build_multilingual, MultilingualParams,
               {"languages": ["en", "zh"], "total": 100, "weights": {"en": 3, "zh": 1}}, corpus)
    assert Counter(r.example.meta["response_language"] for r in rows) == {"en": 75, "zh": 25}
    assert largest_remainder(10, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 4, "b": 3, "c": 3}
    # temperature: sizes 300/300/~290 give nearly uniform shares
    rows = run(build_multilingual, MultilingualParams, {"languages": ["en", "zh", "vi"], "total": 90,
                                                        "temperature": 2}, corpus)
    assert len(rows) == 90
    with pytest.raises(CrosstuneError, match="weights or temperature, not both"):
        run(build_multilingual, MultilingualParams, {"languages": ["en"], "total": 9, "weights": {"en": 1},
                                                     "temperature": 1}, corpus)
