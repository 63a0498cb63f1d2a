"""Recipes as data: the YAML `name:` picks a builder here (a built-in name, or `package.module:Object` naming a
user's own `Recipe`); its params are validated before any work."""

from __future__ import annotations

from crosstune.data.recipes.backward import BACKWARD
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.baselines import MONOLINGUAL, MULTILINGUAL
from crosstune.data.recipes.crossin import RECIPE as CROSSIN
from crosstune.data.recipes.pinch import BILINGUAL, LANGUAGE_BUDGET, PINCH
from crosstune.data.recipes.translation import TRANSLATION
from crosstune.registry import Registry

RECIPES: dict[str, Recipe] = {r.name: r for r in (CROSSIN, PINCH, LANGUAGE_BUDGET, BILINGUAL, MONOLINGUAL,
                                                  MULTILINGUAL, TRANSLATION, BACKWARD)}
REGISTRY = Registry("recipe", RECIPES, lambda o: isinstance(o, Recipe),
                    "a crosstune.data.recipes.base.Recipe (name, params model, languages, build)")


def get_recipe(name: str, where: str | None = None) -> Recipe:
    return REGISTRY.get(name, where)


__all__ = ["RECIPES", "Recipe", "get_recipe"]
