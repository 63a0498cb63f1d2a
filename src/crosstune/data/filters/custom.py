"""A user's own filters, named in a recipe as `package.module:Object` under `filters.custom` (through the registry).

The object is either a `crosstune.data.blocks.Block` subclass (usually a `Filter` with `check(row)`), built as
`Object(**params)`, or a plain function `fn(example, **params)` that returns None (keep), a reason string, or
`(reason, detail)` (drop; recorded in `exclusions.jsonl` with the block's name). Importing the module runs its
code, as `import` does.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import field_validator, model_validator

from crosstune.config import StrictModel
from crosstune.data.blocks import Block, Filter, Row
from crosstune.registry import Registry, is_function, is_subclass

FILTERS = Registry("filter", {}, lambda o: is_subclass(o, Block) or is_function(o),
                   "a subclass of crosstune.data.blocks.Filter (or Block), or a function "
                   "(example, **params) -> None | reason | (reason, detail)")


class CustomFilterSpec(StrictModel):
    component: str  # package.module:Object
    params: dict[str, Any] = {}
    name: str | None = None  # the block name in exclusions and the manifest (default: the object's own)

    @field_validator("component")
    @classmethod
    def _importable(cls, v: str) -> str:
        return FILTERS.check(v)

    @model_validator(mode="after")
    def _params_fit(self):
        obj = FILTERS.get(self.component)
        try:
            inspect.signature(obj).bind(*([] if isinstance(obj, type) else [None]), **self.params)
        except TypeError as e:
            raise ValueError(f"params {sorted(self.params)} do not fit {self.component} ({e})") from None
        except ValueError:  # no signature to check (a builtin): the call will tell
            pass
        return self


class FunctionFilter(Filter):
    """A plain function as a filter: `fn(example, **params)` -> None to keep, else the drop reason."""

    def __init__(self, fn, params: dict, name: str):
        super().__init__()
        self.fn, self.params, self.name = fn, params, name

    def check(self, row: Row) -> tuple[str, str] | None:
        verdict = self.fn(row.example, **self.params)
        if verdict is None or verdict is False:
            return None
        if isinstance(verdict, str):
            return verdict, ""
        reason, detail = verdict
        return str(reason), str(detail)


def make_custom(spec: CustomFilterSpec) -> Block:
    obj = FILTERS.get(spec.component)
    own = getattr(obj, "__name__", "custom")
    if isinstance(obj, type):
        block = obj(**spec.params)
        if spec.name or type(block).name in (Block.name, "filter"):
            block.name = spec.name or own
        return block
    return FunctionFilter(obj, dict(spec.params), spec.name or own)
