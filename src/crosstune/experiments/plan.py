"""Expand an experiment into a validated stage graph: sweep variants, arms, and each stage's content-hash key.

Every stage is checked here, before any work: recipe and config files exist and validate with the swept
overrides applied, tasks and their data load, arms and the baseline name existing entries. A stage's key is the
hash of its kind, its settings (with input file digests for data) and its upstream stages' keys, so any change
upstream re-keys everything downstream and nothing else.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crosstune.errors import CrosstuneError
from crosstune.experiments.config import ConsistencySuite, Experiment, GenerationSuite, JudgeSuite
from crosstune.hashing import json_sha256
from crosstune.paths import ENV, Lookup

UNTUNED = "untuned"


def demo_dir() -> Path:
    return Path(str(resources.files("crosstune") / "demo"))


def expand_placeholders(value: Any, data_root: Path | None) -> Any:
    """`{demo}` -> the package's demo folder; `{data_root}` -> the user's data root (CROSSTUNE_DATA / --data-root)."""
    if isinstance(value, str):
        if "{data_root}" in value:
            if data_root is None:
                env = os.environ.get(ENV)
                why = f"${ENV}={env} is not a folder" if env else "no data root is set"
                raise CrosstuneError(f"{value!r} uses {{data_root}} but {why} "
                                     f"(export {ENV}=DIR or pass --data-root DIR)")
            value = value.replace("{data_root}", str(data_root))
        return value.replace("{demo}", str(demo_dir()))
    if isinstance(value, list):
        return [expand_placeholders(v, data_root) for v in value]
    if isinstance(value, dict):
        return {k: expand_placeholders(v, data_root) for k, v in value.items()}
    return value


@dataclass
class Stage:
    kind: str  # data | train | eval
    name: str  # unique, human-readable: "data/pinch[percent=10]", "train/pinch[percent=10]+lora", ...
    settings: dict  # JSON-able; hashed into the key
    deps: list[str] = field(default_factory=list)
    payload: dict = field(default_factory=dict)  # runtime objects (validated configs); not hashed
    key: str = ""
    dir: Path = Path()


@dataclass
class ArmPlan:
    name: str
    data: str | None  # data variant name
    train: str | None
    params: dict  # sweep parameter -> value for this arm
    entries: dict  # {"data": entry name, "train": entry name}
    model_stage: str | None  # the train stage, or None for the untuned model
    eval_stages: dict[str, str] = field(default_factory=dict)  # suite -> stage name


@dataclass
class Plan:
    experiment: Experiment
    source: Path
    stages: dict[str, Stage]  # in topological order
    arms: list[ArmPlan]
    baseline: str
    sweep_params: list[str]


def _hash(obj: Any) -> str:
    return json_sha256(obj, ascii=False, default=str)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+,@-]+", "_", name)[:80]


def _override_list(overrides: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in overrides.items()]


def _variants(exp: Experiment, section: str, entry: str) -> list[tuple[str, dict, dict]]:
    """(variant name, {dotted key: value} overrides, {sweep key: value} params) for one entry."""
    prefix = f"{section}.{entry}."
    keys = [k for k in exp.sweep if k.startswith(prefix)]
    if not keys:
        return [(entry, {}, {})]
    short = {k: k[len(prefix):] for k in keys}
    label = {k: short[k].rsplit(".", 1)[-1] for k in keys}
    if len(set(label.values())) < len(keys):
        label = short
    out = []
    for values in itertools.product(*(exp.sweep[k] for k in keys)):
        name = entry + "[" + ",".join(f"{label[k]}={v}" for k, v in zip(keys, values)) + "]"
        out.append((name, {short[k]: v for k, v in zip(keys, values)}, dict(zip(keys, values))))
    return out


def _check_sweep_keys(exp: Experiment, src: str) -> None:
    for key in exp.sweep:
        section, _, rest = key.partition(".")
        entry, _, path = rest.partition(".")
        table = {"data": exp.data, "train": exp.train}.get(section)
        if table is None or not path:
            raise CrosstuneError(f"{src}: sweep key {key!r}: expected data.<entry>.<key> or train.<entry>.<key>, "
                                 "e.g. data.pinch.recipe.percent")
        if entry not in table:
            raise CrosstuneError(f"{src}: sweep key {key!r}: no {section} entry {entry!r}; "
                                 f"{section} entries: {', '.join(table) or '(none)'}")


def _input_digests(plan) -> list[dict]:
    from crosstune.data.build import input_paths
    from crosstune.models.fingerprint import file_digest

    return [{"path": p, "sha256": file_digest(plan.lookup(p, f))} for f, p in input_paths(plan)]


def _data_stage(exp: Experiment, lookup: Lookup, entry: str, variant: str, overrides: dict,
                data_root: Path | None) -> Stage:
    from crosstune.data.build import plan_build

    spec = exp.data[entry]
    recipe = lookup(expand_placeholders(spec.recipe, data_root), f"data.{entry}.recipe")
    ovr = expand_placeholders({**spec.overrides, **overrides}, data_root)
    seed = spec.seed if spec.seed is not None else exp.seed
    try:
        bplan = plan_build(recipe, _override_list(ovr), seed, data_root)
    except CrosstuneError as e:
        raise CrosstuneError(f"data.{entry} ({variant}): {e}") from None
    # the settings as given (defaults left out): adding an option with a default to crosstune re-keys nothing
    settings = {"config": bplan.config.model_dump(mode="json", exclude_defaults=True), "inputs": _input_digests(bplan)}
    return Stage("data", f"data/{variant}", settings, payload={"plan": bplan})


def _train_config(exp: Experiment, lookup: Lookup, entry: str, variant: str, overrides: dict,
                  data_root: Path | None):
    from crosstune.config import apply_overrides, read_yaml, validate
    from crosstune.train.config import TrainConfig

    spec = exp.train[entry]
    path = lookup(expand_placeholders(spec.config, data_root), f"train.{entry}.config")
    raw = read_yaml(path)
    raw["model"] = {**raw.get("model", {}), "name": exp.model}
    ovr = expand_placeholders({**spec.overrides, **overrides}, data_root)
    raw = apply_overrides(raw, _override_list(ovr))
    raw.update(data="(from the data stage)", output_dir="(the stage folder)", merge=True)
    if not raw.get("threads"):
        raw["threads"] = exp.threads
    if spec.eval_data:
        raw["eval_data"] = "(from the eval_data stage)"
    return validate(TrainConfig, raw, f"train.{entry} ({variant}, {path})")


def _task_ref(task: str, lookup: Lookup, field: str) -> str:
    """A shipped task's name as it is; a task file (`*.yaml`) by the data-root rule (crosstune.paths)."""
    return str(lookup(task, field)) if task.endswith((".yaml", ".yml")) else task


def _check_suite(name: str, suite, data_root: Path | None, lookup: Lookup) -> dict:
    """Load every task's items now (bad task names, languages or data fail before any work)."""
    if isinstance(suite, ConsistencySuite):
        from crosstune.eval.tasks import load_items, load_task

        files = expand_placeholders(suite.data_files, data_root)
        loaded, used = {}, set()
        for i, task in enumerate(suite.tasks):
            try:
                ref = _task_ref(expand_placeholders(task, data_root), lookup, f"eval.{name}.tasks.{i}")
                cfg = load_task(ref)
                key = task if task in files else cfg.name if cfg.name in files else None
                if key is not None:  # a data file given in the experiment (absolute: no data root needed)
                    used.add(key)
                    cfg = load_task(ref, [f"data_files={json.dumps(files[key])}"])
                items = load_items(cfg, suite.languages, suite.prompt, suite.limit, data_root=data_root)
            except CrosstuneError as e:
                raise CrosstuneError(f"eval.{name}: {e}") from None
            if cfg.name in loaded:
                raise CrosstuneError(f"eval.{name}: two tasks are named {cfg.name!r}")
            loaded[cfg.name] = (cfg, items)
        stray = sorted(set(files) - used)
        if stray:
            raise CrosstuneError(f"eval.{name}.data_files: {stray} name no task of {suite.tasks}")
        return {"tasks": loaded}
    if isinstance(suite, GenerationSuite):
        from crosstune.eval.prompt_sets import resolve_prompt_spec
        from crosstune.experiments.generation import check_generation_suite

        prompts = [resolve_prompt_spec(p, lookup, f"eval.{name}.prompts.{i}")
                   for i, p in enumerate(expand_placeholders(list(suite.prompts), data_root))]
        return check_generation_suite(name, suite.model_copy(update={"prompts": prompts}), data_root)
    from crosstune.experiments.suites import check_custom_suite

    return check_custom_suite(name, suite)  # a user's suite kind (package.module:Object)


def _suite_inputs(loaded: dict) -> dict:
    """What a suite actually asks, hashed: every item's id, language, prompt, options and answer (tasks), or every
    prompt's id, language and messages (generation), so an edited task file or prompt set re-runs the suite."""
    if "object" in loaded:  # a user's suite: what its inputs() says it reads
        return loaded["inputs"]
    if "tasks" in loaded:
        return {name: _hash([[it[lang].id, lang, it[lang].prompt, list(it[lang].choices), it[lang].answer]
                             for it in items for lang in it]) for name, (_, items) in loaded["tasks"].items()}
    return {label: _hash([[it.id, it.language, list(it.messages)] for it in items])
            for label, (_, items) in loaded.get("runs", {}).items()}


def make_plan(exp: Experiment, source: str | Path, data_root: Path | None = None) -> Plan:
    from crosstune.experiments.judging import check_judge_suite, judge_reference

    source = Path(source)
    lookup = Lookup(source, data_root)  # recipes, training configs: the data root, the experiment's folder, cwd
    src = str(source)
    _check_sweep_keys(exp, src)
    for tname, t in exp.train.items():
        if t.eval_data and t.eval_data not in exp.data:
            raise CrosstuneError(f"{src}: train.{tname}.eval_data {t.eval_data!r} is not a data entry "
                                 f"({', '.join(exp.data) or 'none'})")
    held_out = {t.eval_data for t in exp.train.values() if t.eval_data}
    arm_specs = exp.arms if exp.arms is not None else [  # default: every training mixture x every config
        type("A", (), {"name": None, "data": d, "train": t})() for d in exp.data if d not in held_out
        for t in exp.train]
    for a in arm_specs:
        if a.data not in exp.data:
            raise CrosstuneError(f"{src}: arm {a.name!r}: data {a.data!r} is not a data entry ({', '.join(exp.data)})")
        if a.train not in exp.train:
            raise CrosstuneError(f"{src}: arm {a.name!r}: train {a.train!r} is not a train entry "
                                 f"({', '.join(exp.train)})")
    stages: dict[str, Stage] = {}

    def add(stage: Stage) -> Stage:
        stage.key = _hash({"kind": stage.kind, "settings": stage.settings,
                           "deps": [stages[d].key for d in stage.deps]})
        stage.dir = Path("stages") / stage.kind / f"{_safe(stage.name.split('/', 1)[1])}-{stage.key[:10]}"
        return stages.setdefault(stage.name, stage)

    suites = {name: (suite, _check_suite(name, suite, data_root, lookup)) for name, suite in exp.eval.items()
              if not isinstance(suite, JudgeSuite)}
    judges = {name: (suite, check_judge_suite(name, suite, exp)) for name, suite in exp.eval.items()
              if isinstance(suite, JudgeSuite)}
    data_variants = {e: _variants(exp, "data", e) for e in exp.data}
    train_variants = {e: _variants(exp, "train", e) for e in exp.train}
    used_data = {a.data for a in arm_specs} | {t.eval_data for t in exp.train.values() if t.eval_data}
    for entry in exp.data:
        if entry in used_data:
            for variant, ovr, _ in data_variants[entry]:
                add(_data_stage(exp, lookup, entry, variant, ovr, data_root))

    arms: list[ArmPlan] = []

    def add_evals(arm: ArmPlan, model_settings: dict, deps: list[str]) -> None:
        for sname, (suite, loaded) in suites.items():
            st = add(Stage("eval", f"eval/{sname}/{arm.name}", {"suite": sname, **suite.model_dump(
                           mode="json", exclude_defaults=True), "kind": suite.kind, "inputs": _suite_inputs(loaded),
                           "model": model_settings, "seed": exp.seed}, list(deps),
                           payload={"suite": suite, "loaded": loaded, "arm": arm.name}))
            arm.eval_stages[sname] = st.name

    if exp.untuned:
        arm = ArmPlan(UNTUNED, None, None, {}, {}, None)
        add_evals(arm, {"base": exp.model}, [])
        arms.append(arm)
    for a in arm_specs:
        for (dv, _, dparams), (tv, tovr, tparams) in itertools.product(data_variants[a.data],
                                                                       train_variants[a.train]):
            cfg = _train_config(exp, lookup, a.train, tv, tovr, data_root)
            deps = [f"data/{dv}"]
            eval_entry = exp.train[a.train].eval_data
            if eval_entry:
                deps.append(f"data/{data_variants[eval_entry][0][0]}")
            hashed = cfg.model_dump(mode="json", exclude={"data", "output_dir", "eval_data", "threads", "log"},
                                    exclude_defaults=True)
            tstage = add(Stage("train", f"train/{dv}+{tv}", {"config": hashed}, deps, payload={"config": cfg}))
            params = {**dparams, **tparams}
            if a.name is None:  # the product of entries: name arms by their variants
                name = dv if len(exp.train) == 1 and not tparams else f"{dv}+{tv}"
            elif params:
                name = a.name + "[" + ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items()) + "]"
            else:
                name = a.name
            arm = ArmPlan(name, dv, tv, params, {"data": a.data, "train": a.train}, tstage.name)
            add_evals(arm, {"train": tstage.key}, [tstage.name])
            arms.append(arm)
    names = [a.name for a in arms]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CrosstuneError(f"{src}: arm names {dup} repeat; give each arm its own name")
    baseline = exp.baseline or (UNTUNED if exp.untuned else names[0] if names else "")
    if baseline and baseline not in names:
        raise CrosstuneError(f"{src}: baseline {baseline!r} is not an arm; arms: {', '.join(names)}")
    for jname, (suite, loaded) in judges.items():  # each arm's generations vs the reference arm's
        ref = next(a for a in arms if a.name == judge_reference(jname, suite, names, baseline, src))
        ref_stage = ref.eval_stages[suite.generations]
        for arm in arms:
            if arm is ref:
                continue
            gen_stage = arm.eval_stages[suite.generations]
            st = add(Stage("eval", f"eval/{jname}/{arm.name}", {"suite": jname, **suite.model_dump(
                           mode="json", exclude_defaults=True), "kind": "judge", "conditions": loaded["conditions"],
                           "prompt": loaded["prompt_text"], "reference": ref.name}, [gen_stage, ref_stage],
                           payload={"suite": suite, "loaded": loaded, "arm": arm.name, "reference": ref.name,
                                    "arm_stage": gen_stage, "reference_stage": ref_stage}))
            arm.eval_stages[jname] = st.name
    # run order: data, then every training stage, then the evaluations suite by suite (in file order; judges after
    # the generations they read), so a partial run already compares every arm on the first suites
    suite_rank = {n: i for i, n in enumerate(exp.eval)}
    kind_rank = {"data": 0, "train": 1, "eval": 2}
    order = sorted(stages.values(), key=lambda st: (kind_rank[st.kind], st.settings.get("kind") == "judge",
                                                    suite_rank.get(st.settings.get("suite"), -1)))
    stages = {st.name: st for st in order}
    return Plan(exp, source, stages, arms, baseline, list(exp.sweep))
