"""CrossIn makes its rows a list at a time (`crossin.CHUNK`): where the chunks end changes no row."""

from __future__ import annotations

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.recipes import crossin
from crosstune.data.recipes.crossin import CrossInParams, build
from tests.data.recipe_slices import corpus, slices  # noqa: F401  (fixtures)


def _lines(corpus, params):  # noqa: F811
    p = validate(CrossInParams, {"languages": ["en", "zh", "vi"], **params}, "recipe")
    return [(r.id, r.key, r.checks, r.line if r.line is not None else r.example.to_dict())
            for r in build(p, corpus, np.random.default_rng(5), [])]


@pytest.mark.parametrize("params", [
    {"modes": {"base": "all", "en2x": 200, "x2en": 200, "translate": 200, "x2x": 200}},
    {"modes": {"base": 90, "en2x": 50, "x2x": 60, "translate": 70}, "base_languages": ["en", "zh"],
     "translate_direction": "both", "x2x_same_language": False},
    {"modes": {"en2x": 60, "x2en": 60}, "marking": {"style": "directive"}},
])
def test_rows_do_not_depend_on_the_chunk_size(corpus, params, monkeypatch):  # noqa: F811
    whole = _lines(corpus, params)
    monkeypatch.setattr(crossin, "CHUNK", 7)
    assert _lines(corpus, params) == whole and len(whole) > 100
