"""The evaluation engine: load every task first (bad configs and data fail before the model loads), build one
backend behind the call cache, score each (task, mode) into its run folder, and write an index of the results.

`evaluate` is `crosstune eval run` (OUT/<task>/...); `evaluate_consistency` is `crosstune eval consistency`, the same
engine on multiple-choice tasks with one folder per scoring mode (OUT/<task>/<mode>/...); `run_jobs` is what both
and the experiment runner's consistency suites call. Every model call goes through `crosstune.models.cache`: a rerun
into a new folder on the same model and tasks makes no model calls and writes the same summaries. Tables and
figures are the report's (`crosstune.report.evaluation.write_eval_report`), written by the callers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from crosstune.console import console, out
from crosstune.distributed import state
from crosstune.errors import CrosstuneError
from crosstune.eval import rundir
from crosstune.eval.runner import run_task
from crosstune.eval.scorers import build_scorer
from crosstune.eval.tasks import TaskConfig, load_items, load_task
from crosstune.models.backends import cached_backend

MODES = ("loglik", "generate")
INDEX_KEYS = ("kind", "mode", "template", "n_items", "languages", "accuracy", "acc_norm", "f1", "exact_match",
              "consistency_3", "ac3_3", "consistent_correct_3", "rankc")


@dataclass
class Job:
    """One (task, scorer) into one run folder."""

    cfg: TaskConfig
    items: list
    scorer: object
    run_dir: Path
    prompt: str
    extra: dict = field(default_factory=dict)


def task_with_data(name: str, data: dict[str, str] | None = None) -> TaskConfig:
    """A task, with its data files replaced when `data` maps its name to a path (`--data TASK=PATH`)."""
    cfg = load_task(name)
    if data and cfg.name in data:
        return load_task(name, [f"data_files={json.dumps(data[cfg.name])}"])
    return cfg


def load_tasks(task_names, languages=None, prompt=None, limit=None, scaffolding=None, data=None, data_root=None):
    """[(task config, items)] for every task name, all read before any model work."""
    loaded = []
    for name in task_names:
        cfg = task_with_data(name, data)
        langs = [lang for lang in languages if lang in cfg.languages] if languages else None
        if languages and not langs:
            raise CrosstuneError(f"task {cfg.name}: none of --languages {','.join(languages)} "
                                 f"(it has {','.join(cfg.languages)})")
        items = load_items(cfg, langs, prompt, limit, scaffolding=scaffolding, data_root=data_root)
        if not items:
            raise CrosstuneError(f"task {cfg.name}: no items to evaluate")
        loaded.append((cfg, items))
    return loaded


def run_jobs(backend, jobs: list[Job], model: str, *, n_boot: int = 1000, seed: int = 0,
             data_root=None) -> list[dict]:
    """Score every job on `backend` (a `CachedBackend` to reuse earlier calls); one summary per job."""
    primary = state().is_main
    summaries = []
    for job in jobs:
        s = run_task(backend, job.cfg, job.scorer, job.items, job.run_dir.parent, model, job.prompt, n_boot=n_boot,
                     seed=seed, run_dir=job.run_dir, data_root=data_root, extra=job.extra)
        summaries.append(s)
        if primary:
            out.print(headline(job.cfg.name, job.scorer.mode, s))
    if hasattr(backend, "calls"):  # summed over the processes of a launch
        n = state().sum({"calls": backend.calls, "hits": backend.hits})
        if primary:
            console.print(f"model calls: {n['calls']}, cached: {n['hits']}")
    return summaries


def evaluate(model: str, task_names: list[str], out_dir: Path, *, languages: list[str] | None = None,
             limit: int | None = None, template: str | None = None, mode: str | None = None,
             modes: list[str] | None = None, by_mode: bool = False, prompt: str | None = None,
             scaffolding: str | None = None, batch_size: int = 32, dtype: str = "float32",
             extractor: str | None = None, seed: int = 0, max_new_tokens: int | None = None,
             data: dict[str, str] | None = None, data_root=None, n_boot: int = 1000, cache=None,
             multiple_choice_only: bool = False, command: str = "eval run") -> dict[str, dict]:
    """`crosstune eval run`: every task (x mode) into OUT/<task>/ (OUT/<task>/<mode>/ with `by_mode`): run.json,
    predictions.jsonl, summary.json, timing.json; then OUT/summary.json, the index. Returns {folder: summary}."""
    modes = modes if modes is not None else [mode]
    bad = [m for m in modes if m is not None and m not in MODES]
    if bad or not modes:
        raise CrosstuneError(f"--mode {','.join(m or '' for m in modes)}: expected loglik, generate "
                             f"{'or loglik,generate' if by_mode else '(multiple-choice tasks only)'}")
    loaded = load_tasks(task_names, languages, prompt, limit, scaffolding, data, data_root)
    if multiple_choice_only:
        for cfg, _ in loaded:
            if cfg.kind != "multiple_choice":
                raise CrosstuneError(f"task {cfg.name} is {cfg.kind}; `eval consistency` runs multiple-choice "
                                     "tasks (use `crosstune eval run`)")
    out_dir = Path(out_dir)
    primary = state().is_main
    with rundir.run_lock(out_dir, command, primary):
        backend = cached_backend(model, cache, dtype=dtype, batch_size=batch_size)
        jobs = []
        for cfg, items in loaded:
            for m in modes:
                scorer = build_scorer(cfg, m, template=template, extractor=extractor, seed=seed,
                                      max_new_tokens=max_new_tokens)
                folder = out_dir / cfg.name / scorer.mode if by_mode else out_dir / cfg.name
                jobs.append(Job(cfg, items, scorer, folder, prompt or cfg.default_prompt,
                                {"scaffolding": scaffolding or cfg.scaffolding}))
        summaries = run_jobs(backend, jobs, model, n_boot=n_boot, seed=seed, data_root=data_root)
        if primary:
            write_index(out_dir, by_mode)
    return {str(j.run_dir.relative_to(out_dir)): s for j, s in zip(jobs, summaries)}


def evaluate_consistency(model: str, task_names: list[str], modes: list[str], out_dir: Path, *,
                         extractor: str = "seaeval", chat: bool = True, template: str | None = None,
                         **options) -> dict[str, dict]:
    """`crosstune eval consistency --model`: `evaluate` on multiple-choice tasks, OUT/<task>/<mode>/ per mode
    (SeaEval's protocol for generate: the seaeval extractor, the chat template unless `chat` is off)."""
    if not modes:
        raise CrosstuneError("--mode: expected loglik, generate or loglik,generate")
    return evaluate(model, task_names, out_dir, modes=modes, by_mode=True, extractor=extractor,
                    template=template or (None if chat else "raw"), multiple_choice_only=True,
                    command="eval consistency", **options)


def headline(name: str, mode: str, s: dict) -> str:
    parts = [f"{name} ({s.get('kind', '')}/{mode}): acc {s['accuracy']:.4f}"]
    for key in ("acc_norm", "f1", "exact_match", "rankc", "consistency_3", "ac3_3"):
        if key in s:
            parts.append(f"{key} {s[key]:.4f}")
    parts.append(f"({s['n_items']} items x {len(s['languages'])} langs)")
    return "  ".join(parts)


def summary_paths(out_dir: Path, by_mode: bool) -> list[Path]:
    """Every run folder's summary.json under OUT (earlier runs into the same folder too), in name order."""
    return sorted(Path(out_dir).glob("*/*/summary.json" if by_mode else "*/summary.json"))


def write_index(out_dir: Path, by_mode: bool = False) -> None:
    """OUT/summary.json: the headline numbers per task ({task: {mode: full summary}} with `by_mode`)."""
    results: dict = {}
    for path in summary_paths(out_dir, by_mode):
        s = json.loads(path.read_text(encoding="utf-8"))
        if by_mode:
            results.setdefault(path.parent.parent.name, {})[path.parent.name] = s
        else:
            results[path.parent.name] = {k: s[k] for k in INDEX_KEYS if k in s} | {
                "per_language": s.get("per_language", {})}
    rundir.write_json(Path(out_dir) / "summary.json", results)
