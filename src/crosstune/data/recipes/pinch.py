""""Just a Pinch of Multilinguality" (Shaham et al., 2024; METHODS.md section 4): fixed-budget mixtures.

- `pinch`: of `total` English items, replace P% (or exactly `count`) with the same items in other languages,
  spread evenly; the rounding is logged.
- `language_budget`: the budget split uniformly over the first `num_languages` of an addition `order` (1..6 sweep).
- `bilingual`: two languages, 50/50.
Items are disjoint across languages: each drawn item appears once, in exactly one language.
"""

from __future__ import annotations

import math
from fractions import Fraction
from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from crosstune.config import StrictModel
from crosstune.data.blocks import Row
from crosstune.data.recipes.base import Budgeted, Recipe, interleave
from crosstune.data.recipes.common import (MAX_VOLUME, Languages, Volume, draw_indices, languages_field, mono_row,
                                           resolve_volume, spread_evenly)
from crosstune.data.recipes.sources import Corpus
from crosstune.errors import CrosstuneError
from crosstune.languages import normalize


# "round" is half up: Python's round() sends 46.5 to 46, a surprise in a log line.
ROUNDING = {"round": lambda x: math.floor(x + Fraction(1, 2)), "floor": math.floor, "ceil": math.ceil}


class PinchParams(StrictModel):
    english: str = "en"
    languages: Languages  # the non-English languages that share the P% (the "seen" ones)
    percent: float | None = None
    count: int | None = Field(None, ge=0, le=MAX_VOLUME)
    total: Volume = 4640  # the paper's budget (1,000 LIMA + 3,640 OpenAssistant)
    rounding: Literal["round", "floor", "ceil"] = "round"
    english_in_spread: bool = False  # paper variant: the P% is spread over all languages, English included
    unseen: Languages = []  # evaluation-only languages, recorded in the manifest
    replace: bool = False

    @field_validator("percent")
    @classmethod
    def _percent(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 100:
            raise ValueError(f"P must be within 0..100, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "PinchParams":
        self.english = normalize(self.english)
        if (self.percent is None) == (self.count is None):
            raise ValueError("give exactly one of percent (0..100) or count (number of non-English examples)")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.english in self.languages:
            raise ValueError(f"languages lists the English language {self.english!r}; list only the others")
        both = sorted(set(self.languages) & set(self.unseen))
        if both:
            raise ValueError(f"{both} are both seen (languages) and unseen")
        if not self.languages:
            raise ValueError("languages is empty")
        return self


class BudgetParams(StrictModel):
    order: Languages  # addition order, e.g. [en, ar, fi, it, ru, sw]
    num_languages: int | None = None  # use the first k of `order`; None = all
    total: Volume = 4640
    unseen: Languages = []
    replace: bool = False

    @model_validator(mode="after")
    def _check(self) -> "BudgetParams":
        k = self.num_languages if self.num_languages is not None else len(self.order)
        if not 1 <= k <= len(self.order):
            raise ValueError(f"num_languages must be within 1..{len(self.order)} (the length of order), got {k}")
        self.num_languages = k
        return self

    @property
    def chosen(self) -> list[str]:
        return self.order[: self.num_languages]


class BilingualParams(StrictModel):
    languages: list[str]
    total: Volume = 4640
    replace: bool = False

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        v = languages_field(v)
        if len(v) != 2:
            raise ValueError(f"bilingual needs exactly two languages, got {len(v)}")
        return v


def _candidates(recipe: str, corpus: Corpus, langs: list[str], total, replace: bool, rng: np.random.Generator,
                log: list[str]) -> tuple[int, Iterator[str]]:
    """The budget and a seeded stream of candidate items (all items without replacement, so the filters'
    drops are refilled from the rest)."""
    corpus.parallel.require(langs)
    ids = corpus.parallel.ids(langs)
    n = resolve_volume(total, len(ids), f"{recipe} total", replace)
    log.append(f"{recipe}: {len(ids):,} items shared by {', '.join(langs)}; budget {n:,}")
    order = draw_indices(rng, len(ids), 2 * n if replace else len(ids), replace)
    return n, (ids[int(i)] for i in order)


def _rows(recipe: str, corpus: Corpus, pattern: list[str], pool: Iterator[str]) -> Iterator[Row]:
    pools = {lang: pool for lang in pattern}
    for k, (lang, item) in enumerate(interleave(pattern, pools)):
        yield mono_row(corpus, recipe, k, lang, item)


def build_pinch(p: PinchParams, corpus: Corpus, rng: np.random.Generator, log: list[str]) -> Budgeted:
    n, pool = _candidates("pinch", corpus, [p.english, *p.languages], p.total, p.replace, rng, log)
    spread = [p.english, *p.languages] if p.english_in_spread else p.languages
    if p.count is not None:
        k, how = p.count, f"count={p.count}"
    else:
        exact = Fraction(str(p.percent)) * n / 100  # exact: 1% of 4,600 must not ceil to 47 via 46.00000001
        k = ROUNDING[p.rounding](exact)
        how = f"P={p.percent:g}% of {n:,} = {float(exact):g} -> {k} ({p.rounding})"
    if k > n:
        raise CrosstuneError(f"pinch: count {k:,} is larger than the budget {n:,}")
    per_lang = spread_evenly(k, spread, rng)
    log.append(f"pinch: {how}, spread over {len(spread)} languages: "
               + ", ".join(f"{lang} {c}" for lang, c in per_lang.items()))
    quotas = {p.english: n - k, **{lang: c for lang, c in per_lang.items() if lang != p.english}}
    quotas[p.english] += per_lang.get(p.english, 0)
    return Budgeted(_rows("pinch", corpus, _pattern(quotas, rng), pool), quotas)


def _pattern(quotas: dict[str, int], rng: np.random.Generator) -> list[str]:
    """Languages laid out over the budget's positions in a seeded order (the candidate stream cycles it)."""
    labels = [lang for lang, c in quotas.items() for _ in range(c)]
    return [labels[int(j)] for j in rng.permutation(len(labels))]


def _uniform(recipe: str, langs: list[str], total, replace: bool, corpus: Corpus, rng, log,
             pool_langs: list[str] | None = None) -> Budgeted:
    n, pool = _candidates(recipe, corpus, pool_langs or langs, total, replace, rng, log)
    quotas = spread_evenly(n, langs, rng)
    log.append(f"{recipe}: " + ", ".join(f"{lang} {c}" for lang, c in quotas.items()))
    return Budgeted(_rows(recipe, corpus, _pattern(quotas, rng), pool), quotas)


def build_budget(p: BudgetParams, corpus: Corpus, rng, log) -> Budgeted:
    # Items come from those shared by the whole order, so every k of a sweep draws from the same pool.
    return _uniform("language_budget", p.chosen, p.total, p.replace, corpus, rng, log, pool_langs=p.order)


def build_bilingual(p: BilingualParams, corpus: Corpus, rng, log) -> Budgeted:
    return _uniform("bilingual", p.languages, p.total, p.replace, corpus, rng, log)


PINCH = Recipe("pinch", PinchParams, lambda p: [p.english, *p.languages], build_pinch)
LANGUAGE_BUDGET = Recipe("language_budget", BudgetParams, lambda p: p.order, build_budget)
BILINGUAL = Recipe("bilingual", BilingualParams, lambda p: p.languages, build_bilingual)
