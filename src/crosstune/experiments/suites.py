"""A user's own evaluation suite kind in an experiment: `kind: package.module:Object` (through the registry).

```yaml
eval:
  mine: {kind: my_suites:KeywordSuite, settings: {words: [Paris]}}
```

`Object(**settings)` is built when the experiment is planned (before any work; a bad path, a wrong kind or
settings it refuses are one error naming `eval.<suite>`), once per arm. Its `run(model, out_dir, seed)` evaluates
`model` (the arm's model folder, or the experiment's base model for `untuned`) writing what it likes under
`out_dir`, and returns a JSON-able dict whose `metrics` (name -> number) become `<suite>.<name>` columns of
results.csv. An optional `inputs()` returns what the suite reads (JSON-able; e.g. file digests): it is hashed into
the stage key, so changed inputs re-run the suite. Importing the module runs its code, as `import` does.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from pydantic import field_validator

from crosstune.config import StrictModel
from crosstune.errors import CrosstuneError
from crosstune.registry import Registry

def _lcb(**settings):
    from crosstune.experiments.lcb import LcbSuite

    return LcbSuite(**settings)


# None: a kind with its own schema in experiments/config.py; else a factory called as Object(**settings)
SUITES = Registry("suite kind", {"consistency": None, "generation": None, "judge": None, "lcb": _lcb}, callable,
                  "a class or factory called as Object(**settings) whose result has run(model, out_dir, seed) "
                  "-> dict (crosstune.experiments.suites)")


class CustomSuite(StrictModel):
    """A suite kind named `package.module:Object`; its own settings go under `settings`."""

    kind: str
    settings: dict[str, Any] = {}

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return SUITES.check(v)


def suite_tag(value: Any) -> str:
    """The pydantic discriminator of a suite: a built-in kind, else `custom` (the registry judges the name)."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) and kind in SUITES.builtins and SUITES.builtins[kind] is None else "custom"


def check_custom_suite(name: str, suite: CustomSuite) -> dict:
    """Build the suite object now, so its settings fail before any work; its inputs join the stage key."""
    factory = SUITES.get(suite.kind, f"eval.{name}.kind")
    try:
        obj = factory(**suite.settings)
    except (TypeError, ValueError, CrosstuneError) as e:
        raise CrosstuneError(f"eval.{name}.settings: {suite.kind} refused them ({e})") from None
    if not callable(getattr(obj, "run", None)):
        raise CrosstuneError(f"eval.{name}.kind: {suite.kind!r} built a {type(obj).__name__} with no run(); "
                             f"expected {SUITES.expected}")
    inputs = obj.inputs() if callable(getattr(obj, "inputs", None)) else {}
    return {"object": obj, "inputs": inputs}


def run_custom_suite(name: str, obj, model: str, out_dir: Path, seed: int) -> dict:
    result = obj.run(model=model, out_dir=Path(out_dir), seed=seed)
    metrics = result.get("metrics", {}) if isinstance(result, dict) else None
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and isinstance(v, numbers.Real)
                                                for k, v in metrics.items()):
        raise CrosstuneError(f"eval.{name}: run() must return a dict whose 'metrics' maps names to numbers, "
                             f"got {type(result).__name__}")
    return {**result, "kind": "custom", "metrics": {k: float(v) for k, v in metrics.items()}}
