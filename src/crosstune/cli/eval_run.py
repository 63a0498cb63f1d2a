"""`crosstune eval run | tasks | compare`: any parallel benchmark from its task YAML, the shipped task list, and
paired significance between two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from crosstune.console import console, out
from crosstune.distributed import state
from crosstune.errors import CrosstuneError
from crosstune.threads import set_threads


def csv_list(value: Optional[str]) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()] if value else []


def data_overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or not task or not path:
            raise CrosstuneError(f"--data {pair!r}: expected TASK=PATH, e.g. cross_xquad=data/cross_xquad_test.jsonl")
        result[task] = path
    return result


def run(
    model: str = typer.Option(..., help="'default', a HF folder (or adapter), .gguf, hub id, or openai:MODEL@BASE_URL."),
    tasks: str = typer.Option(..., help="Comma-separated shipped task names or task .yaml paths."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: OUT/<task>/summary.json and predictions."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated language tags (default: all of each task)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N items of each task."),
    template: Optional[str] = typer.Option(None, help="Prompt template: raw, auto, chat, alpaca, gemma, llama "
                                                      "(default: the task's `template`)."),
    mode: Optional[str] = typer.Option(None, help="Multiple-choice tasks: loglik or generate (default: the task's)."),
    prompt: Optional[str] = typer.Option(None, help="Prompt name from the task YAML (default: its default_prompt)."),
    scaffolding: Optional[str] = typer.Option(None, help="english or native prompt words (default: the task's)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder task data paths are relative to (else $CROSSTUNE_DATA)."),
    data: list[str] = typer.Option([], help="TASK=PATH: read a task's data from PATH (repeatable)."),
    batch_size: int = typer.Option(32, min=1),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
    extractor: Optional[str] = typer.Option(None, help="Generate mode: seaeval (TiGEr), crossin, or "
                                                       "package.module:function."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Override the task's generation length."),
    seed: int = typer.Option(0, help="Seeds the extraction fallback and the bootstrap."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (default: auto, the free cores)."),
    decoding: str = typer.Option("lcb", help="LCB tasks: lcb (the paper's: T 0.3, top-p 0.75, seeded) or greedy."),
    cache: Optional[Path] = typer.Option(None, help="Call cache file (default $CROSSTUNE_CACHE/calls.sqlite): a "
                                                    "rerun on the same model and tasks makes no model calls."),
) -> None:
    """Evaluate a model on parallel benchmarks: per-language scores and cross-lingual consistency."""
    from crosstune.eval.evaluate import evaluate

    if scaffolding not in (None, "english", "native"):
        raise CrosstuneError(f"--scaffolding {scaffolding!r}: expected english or native")
    set_threads(threads)
    # issue 20: LCB tasks (kind language_confusion) are generated and scored by crosstune.eval.lcb; the rest below
    from crosstune.eval.lcb import run_lcb_part

    names = run_lcb_part(model, csv_list(tasks), out_dir, languages=csv_list(languages) or None, limit=limit,
                         decoding=decoding, seed=seed, max_new_tokens=max_new_tokens, template=template,
                         batch_size=batch_size, dtype=dtype, data=data_overrides(data), data_root=data_root,
                         cache=cache)
    if len(names) < len(csv_list(tasks)) and state().is_main:  # one writer under a multi-process launch
        from crosstune.report.fidelity import write_lcb_reports

        write_lcb_reports(out_dir)
    if not names:
        return
    results = evaluate(model, names, out_dir, languages=csv_list(languages) or None, limit=limit,
                       template=template, mode=mode, prompt=prompt, scaffolding=scaffolding, batch_size=batch_size,
                       dtype=dtype, extractor=extractor, seed=seed, max_new_tokens=max_new_tokens,
                       data=data_overrides(data), data_root=data_root, n_boot=n_boot, cache=cache)
    write_report(out_dir, f"Evaluation: {model}", results)


def write_report(out_dir: Path, title: str, results, by_mode: bool = False) -> None:
    """The tables and figures of an evaluation folder, by the primary process only (`accelerate launch`)."""
    if state().is_main:
        from crosstune.report.evaluation import write_eval_report

        write_eval_report(out_dir, title, by_mode)


def tasks() -> None:
    """List the shipped tasks: name, kind, languages (one per line)."""
    from crosstune.eval.tasks import available_tasks, load_task

    for name in available_tasks():
        cfg = load_task(name)
        kind = cfg.kind + (f"/{cfg.method}" if cfg.kind == "multiple_choice" else f"/{cfg.extract or 'span'}"
                           if cfg.kind == "generation" else "")
        out.print(f"{name:<14} {kind:<26} {','.join(cfg.languages)}", highlight=False, soft_wrap=True)


def compare(
    run_a: Path = typer.Argument(..., help="Run folder A (e.g. the base model's `eval run --out`)."),
    run_b: Path = typer.Argument(..., help="Run folder B (e.g. the tuned model's)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Also write the comparison as JSON here."),
) -> None:
    """Paired significance per task and language: McNemar's test (exact; clustered by item when languages are
    pooled) and Newcombe's paired score interval of the difference."""
    from crosstune.eval.compare import compare_runs, compare_table

    result = compare_runs(run_a, run_b)
    out.print(compare_table(result), highlight=False, soft_wrap=True)
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {out_path}")
