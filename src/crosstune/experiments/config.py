"""The experiment file: pydantic schema (unknown keys are errors) for data x train x eval, arms and sweeps.

```yaml
name: pinch_sweep
model: default
threads: 1
data:                                   # name -> a recipe file (+ dotted overrides, as `crosstune data build`)
  pinch: {recipe: ../recipes/pinch_p1.yaml, overrides: {recipe.total: 400}}
train:                                  # name -> a training config (+ overrides, as `crosstune train`)
  lora: {config: ../configs/train/lora_smollm2_cpu.yaml, overrides: {max_steps: 50}}
eval:                                   # name -> an evaluation suite run on every model
  mmlu: {kind: consistency, tasks: [cross_mmlu], languages: [en, zh, vi, es], limit: 50}
  hplt: {kind: generation, prompts: ["zh=hplt_oasst_multilingual_test/test_zh.jsonl"], limit: 20}
  side_by_side: {kind: judge, generations: hplt, judge: "openai:judge@http://127.0.0.1:8080/v1"}
sweep:                                  # <data|train>.<entry>.<dotted key> -> values; one variant per value
  data.pinch.recipe.percent: [0, 1, 10, 50]
```

Files (recipes, training configs, task files, prompt sets) are found by the one rule of `crosstune.paths`: under
the data root (`--data-root`, else `$CROSSTUNE_DATA`), then beside this file, then in the working directory;
`./` and `../` paths skip the data root. `{data_root}` and `{demo}` in a value are replaced by those folders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator

from crosstune.config import Batch, LinedDict, Seed, StrictModel, Threads, Tokens, read_yaml, validate
from crosstune.errors import CrosstuneError
from crosstune.experiments.suites import CustomSuite, suite_tag


class DataEntry(StrictModel):
    recipe: str  # a recipe YAML: relative to the working directory, the experiment's folder or its parent
    overrides: dict[str, Any] = {}  # dotted key -> value, as `crosstune data build ... key=value`
    seed: Seed | None = None  # default: the experiment's seed


class TrainEntry(StrictModel):
    config: str  # a training config YAML
    overrides: dict[str, Any] = {}
    eval_data: str | None = None  # a data entry whose rows are the held-out set (loss per language, all arms)


class Arm(StrictModel):
    name: str
    data: str
    train: str


class ConsistencySuite(StrictModel):
    """Parallel multiple-choice tasks: accuracy per language, Consistency_s, AC3_s (crosstune.eval.runner)."""

    kind: Literal["consistency"]
    tasks: list[str]
    languages: list[str] | None = None  # default: all of the task's
    mode: Literal["loglik", "generate"] = "loglik"
    limit: int | None = Field(None, gt=0, le=10**9)
    prompt: str | None = None
    data_files: dict[str, str] = {}  # task (as listed, or its name) -> data file, e.g. {demo_mc: "{demo}/mc.jsonl"}
    batch_size: Batch = 32
    n_boot: int = Field(1000, ge=0, le=10**6)


class GenerationRun(StrictModel):
    """One generation condition: a response-language signal and the language it asks for."""

    directive: Literal["none", "tag", "answer_in"] = "none"
    target_language: str | None = None  # with tag/answer_in: the requested language (none: the prompt's own)
    languages: list[str] | None = None  # only prompts in these languages (default: all of the prompt sets)


class GenerationSuite(StrictModel):
    """Open generation on parallel prompts (crosstune.eval.generation), then response-language fidelity
    (crosstune.eval.fidelity) per condition: detected vs expected language, confusion, LPR/WPR."""

    kind: Literal["generation"]
    prompts: list[str]  # [LANG=]FILE specs, as `crosstune eval generate --prompts`
    runs: list[GenerationRun] = [GenerationRun()]
    limit: int | None = Field(None, gt=0, le=10**9)  # prompts per language (the first ones)
    max_new_tokens: Tokens = 64
    batch_size: Batch = 16
    lid: str = "pycld2"
    n_boot: int = Field(1000, ge=0, le=10**6)


class JudgeSuite(StrictModel):
    """Pairwise LLM judging (crosstune.eval.judge) of every arm's generations against a reference arm's, each pair
    in both orders, through the call cache: score per language with intervals, position bias, parse failures."""

    kind: Literal["judge"]
    generations: str  # a generation suite of this experiment: its responses are what is judged
    judge: str = "default"  # the judge model: 'default', a HF folder, .gguf, hub id, or openai:MODEL@BASE_URL
    protocol: str = "pinch"  # pinch (side-by-side preference), xinstruct (0-10 scores), or package.module:Object
    reference: str | None = None  # the arm whose responses are B (default: the experiment's baseline)
    conditions: list[str] | None = None  # generation conditions to judge, as labelled in results (default: all)
    prompt: str | None = None  # a judge prompt file ({lang}, {instruction}, {output1}, {output2})
    gate: Literal["auto", "on", "off"] = "auto"  # language gate for the headline score (both always reported)
    lid: str = "pycld2"
    limit: int | None = Field(None, gt=0, le=10**9)  # pairs per language
    max_new_tokens: Tokens | None = None
    n_boot: int = Field(1000, ge=1, le=10**6)


# a built-in kind picks its schema; any other kind is a user's suite (package.module:Object, experiments/suites.py)
Suite = Annotated[Union[Annotated[ConsistencySuite, Tag("consistency")], Annotated[GenerationSuite, Tag("generation")],
                        Annotated[JudgeSuite, Tag("judge")], Annotated[CustomSuite, Tag("custom")]],
                  Discriminator(suite_tag)]


class Experiment(StrictModel):
    name: str
    description: str = ""
    vars: dict[str, Any] = {}  # `${name}` anywhere below is replaced by the value (override: vars.budget=200)
    model: str = "default"  # the base model every training config starts from (unless it names its own)
    seed: Seed = 0
    threads: Threads = 0  # torch CPU threads for every stage (0: auto, the cores free at start)
    data: dict[str, DataEntry] = {}
    train: dict[str, TrainEntry] = {}
    arms: list[Arm] | None = None  # default: every data entry x every train entry
    untuned: bool = True  # also evaluate the base model itself (arm "untuned")
    baseline: str | None = None  # the arm significance is measured against (default: "untuned")
    eval: dict[str, Suite] = {}
    sweep: dict[str, list[Any]] = {}

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, v: dict[str, list]) -> dict[str, list]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"sweep {key!r}: no values")
            if len({repr(x) for x in values}) != len(values):
                raise ValueError(f"sweep {key!r}: repeated values {values}")
        return v


def substitute_vars(node: Any, variables: dict[str, Any], src: str) -> Any:
    """`${name}` -> the variable: a whole-string reference keeps the value's type, inside text it is formatted."""
    if isinstance(node, dict):  # (read_yaml bounded the aliases, so this copy is bounded too; lines are kept)
        return LinedDict({k: substitute_vars(v, variables, src) for k, v in node.items()},
                         lines=getattr(node, "lines", None))
    if isinstance(node, list):
        return [substitute_vars(v, variables, src) for v in node]
    if isinstance(node, str) and "${" in node:
        def value(name: str) -> Any:
            if name not in variables:
                raise CrosstuneError(f"{src}: ${{{name}}} is used but not defined in vars "
                                     f"({', '.join(variables) or 'none defined'})")
            return variables[name]

        whole = re.fullmatch(r"\$\{(\w+)\}", node)
        if whole:
            return value(whole.group(1))
        return re.sub(r"\$\{(\w+)\}", lambda m: str(value(m.group(1))), node)
    return node


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    from crosstune.config import apply_overrides

    raw = apply_overrides(read_yaml(path), overrides or [])
    variables = raw.get("vars") or {}
    if not isinstance(variables, dict):
        raise CrosstuneError(f"{path}: field 'vars': expected a mapping of names to values")
    body = substitute_vars(LinedDict({k: v for k, v in raw.items() if k != "vars"},
                                     lines=getattr(raw, "lines", None)), variables, str(path))
    body["vars"] = variables
    return validate(Experiment, body, str(path))
