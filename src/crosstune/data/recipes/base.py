"""What a recipe is: a params model (validated before any work) and a builder from corpus to rows.

Most recipes read `sources:` into a parallel `Corpus`; a recipe with its own `load` (translation) reads the
files its params name instead and returns `(data, input file hashes)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosstune.data.blocks import Row

# build(params, corpus, rng, log) checks volumes against the corpus eagerly, then returns a row iterator
# (or a `Budgeted` stream for fixed-budget recipes).
Builder = Callable[[Any, Any, np.random.Generator, list[str]], Any]
Loader = Callable[[Any, list[Path]], tuple[Any, list[dict]]]


@dataclass(frozen=True)
class Recipe:
    name: str
    params: type
    languages: Callable[[Any], list[str]]  # languages the recipe needs from `sources`
    build: Builder
    load: Loader | None = None  # None: the corpus comes from `sources:`

    @property
    def uses_sources(self) -> bool:
        return self.load is None


@dataclass
class Budgeted:
    """A fixed-budget recipe's output: an ordered candidate stream (longer than needed) and how many rows of
    each response language to keep after filtering."""

    rows: Iterator[Row]
    quotas: dict[str, int]


def interleave(pattern: list[str], pools: dict[str, Iterator[str]]) -> Iterator[tuple[str, str]]:
    """(language, item id) following `pattern` cyclically; a language stops when its pool runs out. Pass the
    same iterator for every language to keep items disjoint across languages."""
    live = set(pattern)
    j = 0
    while live:
        lang = pattern[j % len(pattern)]
        j += 1
        if lang not in live:
            continue
        item = next(pools[lang], None)
        if item is None:
            live.discard(lang)
            continue
        yield lang, item
