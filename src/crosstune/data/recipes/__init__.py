"""Recipes as data: the YAML `name:` picks a builder here; its params are validated before any work."""

from __future__ import annotations

from crosstune.data.recipes.backward import BACKWARD
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.baselines import MONOLINGUAL, MULTILINGUAL
from crosstune.data.recipes.crossin import RECIPE as CROSSIN
from crosstune.data.recipes.pinch import BILINGUAL, LANGUAGE_BUDGET, PINCH
from crosstune.data.recipes.translation import TRANSLATION
from crosstune.errors import CrosstuneError

RECIPES: dict[str, Recipe] = {r.name: r for r in (CROSSIN, PINCH, LANGUAGE_BUDGET, BILINGUAL, MONOLINGUAL,
                                                  MULTILINGUAL, TRANSLATION, BACKWARD)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise CrosstuneError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


__all__ = ["RECIPES", "Recipe", "get_recipe"]
