"""Baselines: `monolingual(language)` and `multilingual(languages, weights | temperature)`.

Languages need not be parallel here; each language samples from its own items. With `total: all` the
multilingual mix is every item of every language; otherwise per-language shares come from `weights`, or from
temperature sampling (p_l proportional to n_l^(1/T); T=1 is proportional, large T tends to uniform).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from pydantic import model_validator

from crosstune.config import StrictModel
from crosstune.data.blocks import Row
from crosstune.data.recipes.base import Budgeted, Recipe, interleave
from crosstune.data.recipes.common import Languages, Volume, draw_indices, mono_row, resolve_volume
from crosstune.data.recipes.sources import Corpus
from crosstune.languages import LanguageTag, normalize


class MonolingualParams(StrictModel):
    language: LanguageTag
    total: Volume = "all"
    replace: bool = False


class MultilingualParams(StrictModel):
    languages: Languages
    total: Volume = "all"
    weights: dict[str, float] | None = None
    temperature: float | None = None
    replace: bool = False

    @model_validator(mode="after")
    def _check(self) -> "MultilingualParams":
        if self.weights is not None and self.temperature is not None:
            raise ValueError("give weights or temperature, not both")
        if self.weights is not None:
            self.weights = {normalize(k): float(w) for k, w in self.weights.items()}
            if set(self.weights) != set(self.languages):
                raise ValueError(f"weights must name exactly the languages {self.languages}")
            if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
                raise ValueError("weights must be >= 0 with a positive sum")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        return self


def _items(corpus: Corpus, lang: str) -> Sequence[str]:
    """Every item of one language in file order (a compact view for a corpus spilled to disk)."""
    corpus.parallel.require([lang])
    return corpus.parallel.ids([lang])


def _pool(ids: list[str], n: int, replace: bool, rng) -> Iterator[str]:
    """Seeded candidates: every item once (so filtered rows are refilled), or 2n draws with replacement."""
    return (ids[int(i)] for i in draw_indices(rng, len(ids), 2 * n if replace else len(ids), replace))


def build_monolingual(p: MonolingualParams, corpus: Corpus, rng, log) -> Iterator[Row] | Budgeted:
    ids = _items(corpus, p.language)
    n = resolve_volume(p.total, len(ids), "monolingual total", p.replace)
    log.append(f"monolingual: {n:,} of {len(ids):,} {p.language} items")
    if p.total == "all":
        return (mono_row(corpus, "monolingual", k, p.language, item) for k, item in enumerate(ids))
    rows = (mono_row(corpus, "monolingual", k, p.language, item)
            for k, item in enumerate(_pool(ids, n, p.replace, rng)))
    return Budgeted(rows, {p.language: n})


def largest_remainder(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to `total`, proportional to `shares` (ties broken by listing order)."""
    s = sum(shares.values())
    exact = {k: total * v / s for k, v in shares.items()}
    counts = {k: int(np.floor(x)) for k, x in exact.items()}
    order = sorted(shares, key=lambda k: -(exact[k] - counts[k]))
    for k in order[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def build_multilingual(p: MultilingualParams, corpus: Corpus, rng, log) -> Iterator[Row] | Budgeted:
    ids = {lang: _items(corpus, lang) for lang in p.languages}
    if p.total == "all":  # every item of every language
        log.append("multilingual: " + ", ".join(f"{lang} {len(v):,}" for lang, v in ids.items()))
        return (mono_row(corpus, "multilingual", f"{lang}-{item}", lang, item)
                for lang in p.languages for item in ids[lang])
    if p.weights is not None:
        shares = p.weights
    elif p.temperature is not None:
        shares = {lang: len(v) ** (1 / p.temperature) for lang, v in ids.items()}
    else:
        shares = {lang: 1.0 for lang in p.languages}
    quotas = largest_remainder(p.total, shares)
    for lang, c in quotas.items():
        if c:
            resolve_volume(c, len(ids[lang]), f"multilingual {lang}", p.replace)
    log.append("multilingual: " + ", ".join(f"{lang} {c:,}/{len(ids[lang]):,}" for lang, c in quotas.items()))
    pools = {lang: _pool(ids[lang], c, p.replace, rng) for lang, c in quotas.items()}
    labels = [lang for lang, c in quotas.items() for _ in range(c)]
    pattern = [labels[int(j)] for j in rng.permutation(len(labels))]
    rows = (mono_row(corpus, "multilingual", k, lang, item)
            for k, (lang, item) in enumerate(interleave(pattern, pools)))
    return Budgeted(rows, quotas)


MONOLINGUAL = Recipe("monolingual", MonolingualParams, lambda p: [p.language], build_monolingual)
MULTILINGUAL = Recipe("multilingual", MultilingualParams, lambda p: p.languages, build_multilingual)
