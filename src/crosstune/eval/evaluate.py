"""Evaluate one model on several tasks: load every task first (bad configs and data fail before the model loads),
build the backend once, run each task with the scorer its kind calls for, and write an index of the results.

`evaluate` is `crosstune eval run` (OUT/<task>/...); `evaluate_consistency` is `crosstune eval consistency`
(SeaEval-style multiple choice, one folder per scoring mode: OUT/<task>/<mode>/...).
"""

from __future__ import annotations

import json
from pathlib import Path

from crosstune.console import console, out
from crosstune.errors import CrosstuneError
from crosstune.eval.runner import process_state, run_task
from crosstune.eval.scorers import GenerateScorer, LoglikScorer, build_scorer
from crosstune.eval.tasks import TaskConfig, load_items, load_task

MODES = ("loglik", "generate")


def task_with_data(name: str, data: dict[str, str] | None = None) -> TaskConfig:
    """A task, with its data files replaced when `data` maps its name to a path (`--data TASK=PATH`)."""
    cfg = load_task(name)
    if data and cfg.name in data:
        return load_task(name, [f"data_files={json.dumps(data[cfg.name])}"])
    return cfg


def _load(task_names, languages, prompt, limit, scaffolding, data, data_root):
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


def _backend(model: str, dtype: str, batch_size: int):
    from crosstune.models.backends import build_backend

    return build_backend(model, dtype=dtype, batch_size=batch_size)


def evaluate(model: str, task_names: list[str], out_dir: Path, *, languages: list[str] | None = None,
             limit: int | None = None, template: str | None = None, mode: str | None = None,
             prompt: str | None = None, scaffolding: str | None = None, batch_size: int = 32,
             dtype: str = "float32", extractor: str | None = None, seed: int = 0, max_new_tokens: int | None = None,
             data: dict[str, str] | None = None, data_root=None, n_boot: int = 1000) -> dict[str, dict]:
    """`crosstune eval run`: every task into OUT/<task>/ (summary.json, predictions.jsonl, run.json, table.md)."""
    if mode is not None and mode not in MODES:
        raise CrosstuneError(f"--mode {mode!r}: expected loglik or generate (multiple-choice tasks only)")
    loaded = _load(task_names, languages, prompt, limit, scaffolding, data, data_root)
    backend = _backend(model, dtype, batch_size)
    results = {}
    for cfg, items in loaded:
        scorer = build_scorer(cfg, mode, template=template, extractor=extractor, seed=seed,
                              max_new_tokens=max_new_tokens)
        extra = {"scaffolding": scaffolding or cfg.scaffolding}
        s = run_task(backend, cfg, scorer, items, out_dir, model, prompt or cfg.default_prompt, n_boot=n_boot,
                     seed=seed, run_dir=Path(out_dir) / cfg.name, data_root=data_root, extra=extra)
        results[cfg.name] = s
        if process_state().process_index == 0:
            out.print(headline(cfg.name, scorer.mode, s))
    if process_state().process_index == 0:
        write_run_index(Path(out_dir), model)
    return results


def headline(name: str, mode: str, s: dict) -> str:
    parts = [f"{name} ({s.get('kind', '')}/{mode}): acc {s['accuracy']:.4f}"]
    for key in ("acc_norm", "f1", "exact_match", "rankc", "consistency_3", "ac3_3"):
        if key in s:
            parts.append(f"{key} {s[key]:.4f}")
    parts.append(f"({s['n_items']} items x {len(s['languages'])} langs)")
    return "  ".join(parts)


def write_run_index(out_dir: Path, model: str) -> None:
    """OUT/summary.json (headline numbers per task) and OUT/results.md (every task's table)."""
    from crosstune.report.consistency import task_table

    results, tables = {}, []
    for path in sorted(out_dir.glob("*/summary.json")):
        s = json.loads(path.read_text(encoding="utf-8"))
        keep = ("kind", "mode", "template", "n_items", "languages", "accuracy", "acc_norm", "f1", "exact_match",
                "consistency_3", "ac3_3", "consistent_correct_3", "rankc")
        results[path.parent.name] = {k: s[k] for k in keep if k in s} | {
            "per_language": s.get("per_language", {})}
        tables.append(task_table(s))
    (out_dir / "summary.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(f"# Evaluation: {model}\n\n" + "\n".join(tables), encoding="utf-8")
    console.print(f"wrote {out_dir}/summary.json, results.md and per-task folders")


def evaluate_consistency(model: str, task_names: list[str], modes: list[str], out_dir: Path, *, limit=None,
                         languages=None, prompt=None, batch_size: int = 32, dtype: str = "float32",
                         extractor: str = "seaeval", seed: int = 0, max_new_tokens=None, chat: bool = True,
                         template: str | None = None, scaffolding: str | None = None, data=None, data_root=None,
                         n_boot: int = 1000) -> None:
    """`crosstune eval consistency --model`: SeaEval-style multiple choice, OUT/<task>/<mode>/ per mode."""
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise CrosstuneError(f"--mode {','.join(modes)}: expected loglik, generate or loglik,generate")
    loaded = _load(task_names, languages, prompt, limit, scaffolding, data, data_root)
    for cfg, _ in loaded:
        if cfg.kind != "multiple_choice":
            raise CrosstuneError(f"task {cfg.name} is {cfg.kind}; `eval consistency` runs multiple-choice tasks "
                                 "(use `crosstune eval run`)")
    backend = _backend(model, dtype, batch_size)
    for cfg, items in loaded:
        for m in modes:
            if m == "loglik":
                scorer = LoglikScorer(cfg, template or "raw")
            else:
                scorer = GenerateScorer(cfg, extractor, seed, chat, max_new_tokens, template)
            s = run_task(backend, cfg, scorer, items, out_dir, model, prompt or cfg.default_prompt,
                         n_boot=n_boot, seed=seed, data_root=data_root)
            if process_state().process_index == 0:
                out.print(f"{cfg.name} {m}: acc {s['overall_acc']:.4f}  con3 {s.get('consistency_score_3', float('nan')):.4f}"
                          f"  AC3_3 {s.get('AC3_3', float('nan')):.4f}  ({s['n_items']} items x {len(s['languages'])} langs)")
    if process_state().process_index == 0:
        write_consistency_index(Path(out_dir), model)


def write_consistency_index(out_dir: Path, model: str) -> None:
    """OUT/summary.json and OUT/results.md cover every task/mode run into this folder (earlier runs too)."""
    from crosstune.report.consistency import task_table

    results, tables = {}, []
    for path in sorted(out_dir.glob("*/*/summary.json")):
        s = json.loads(path.read_text(encoding="utf-8"))
        results.setdefault(path.parent.parent.name, {})[path.parent.name] = s
        tables.append(task_table(s))
    (out_dir / "summary.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(f"# Cross-lingual consistency: {model}\n\n" + "\n".join(tables),
                                        encoding="utf-8")
    console.print(f"wrote {out_dir}/summary.json, results.md and per-task folders")
