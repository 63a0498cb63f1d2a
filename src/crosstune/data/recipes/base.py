"""What a recipe is: a params model (validated before any work) and a builder from corpus to rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from crosstune.data.blocks import Row
from crosstune.data.recipes.sources import Corpus

# build(params, corpus, rng, log) checks volumes against the corpus eagerly, then returns a row iterator.
Builder = Callable[[Any, Corpus | None, np.random.Generator, list[str]], Iterator[Row]]


@dataclass(frozen=True)
class Recipe:
    name: str
    params: type
    languages: Callable[[Any], list[str]]  # languages the recipe needs from `sources`
    build: Builder
    uses_sources: bool = True
