"""`crosstune eval ...`: parallel benchmarks, cross-lingual consistency, AC3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from crosstune.console import console, out
from crosstune.errors import CrosstuneError

app = typer.Typer(help="Evaluate models language by language.", no_args_is_help=True)
app.command("fidelity")(__import__("crosstune.cli.eval_fidelity", fromlist=["x"]).fidelity)
app.command("judge")(__import__("crosstune.cli.eval_judge", fromlist=["x"]).judge)
app.command("generate")(__import__("crosstune.cli.eval_generate", fromlist=["x"]).generate)
app.command("fidelity")(__import__("crosstune.cli.eval_fidelity", fromlist=["x"]).fidelity)
app.command("judge")(__import__("crosstune.cli.eval_judge", fromlist=["x"]).judge)

MODES = ("loglik", "generate")


def _csv(value: Optional[str]) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()] if value else []


def _data_overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or not task or not path:
            raise CrosstuneError(f"--data {pair!r}: expected TASK=PATH, e.g. cross_xquad=data/cross_xquad_test.jsonl")
        result[task] = path
    return result


@app.command("consistency")
def consistency(
    predictions: Optional[Path] = typer.Option(None, help="Score raw outputs in SeaEval's prediction row format."),
    task: Optional[str] = typer.Option(None, help="With --predictions: the task the rows belong to."),
    model: Optional[str] = typer.Option(None, help="Evaluate a model: 'default', a HF folder, .gguf, hub id, "
                                                   "or openai:MODEL@BASE_URL."),
    tasks: str = typer.Option("cross_mmlu,cross_logiqa", help="Comma-separated task names or task .yaml paths."),
    mode: str = typer.Option("loglik", help="loglik (option log-likelihood) or generate (SeaEval protocol); "
                                            "'loglik,generate' runs both."),
    out_path: Path = typer.Option(..., "--out", help="JSON file (--predictions) or output folder (--model)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N items of each task."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated language tags (default: all of the task)."),
    prompt: Optional[str] = typer.Option(None, help="Prompt name from the task YAML (default: its default_prompt)."),
    batch_size: int = typer.Option(32, min=1),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
    extractor: str = typer.Option("seaeval", help="Answer extraction for generate: seaeval (TiGEr) or crossin."),
    seed: int = typer.Option(0, help="Seeds the extraction fallback and the bootstrap."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Override the task's generation length."),
    chat: bool = typer.Option(True, help="Generate mode: wrap the prompt in the model's chat template."),
    data: list[str] = typer.Option([], help="TASK=PATH: read a task's data from PATH (repeatable)."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (1 is faster on an oversubscribed "
                                                            "machine: threads that share a core spin and stall)."),
) -> None:
    """Accuracy, Consistency_s and AC3_s on parallel multiple-choice tasks (SeaEval's metrics)."""
    if (predictions is None) == (model is None):
        raise CrosstuneError("give exactly one of --predictions FILE (score saved outputs) or --model M (evaluate)")
    if extractor not in ("seaeval", "crossin"):
        raise CrosstuneError(f"--extractor {extractor!r}: expected seaeval or crossin")
    if threads:
        import torch

        torch.set_num_threads(threads)
    if predictions is not None:
        _score_file(predictions, task, out_path, extractor, seed, n_boot, _data_overrides(data))
    else:
        _evaluate(model, _csv(tasks), _csv(mode), out_path, limit, _csv(languages), prompt, batch_size, dtype,
                  extractor, seed, max_new_tokens, chat, _data_overrides(data), n_boot)


def _task(name: str, data: dict[str, str]):
    from crosstune.eval.tasks import load_task

    cfg = load_task(name)
    return load_task(name, [f"data_files={data[cfg.name]}"]) if cfg.name in data else cfg


def _score_file(predictions, task, out_path, extractor, seed, n_boot, data) -> None:
    from crosstune.data.io import dumps_row
    from crosstune.eval.predictions import score_predictions

    if not task:
        raise CrosstuneError("--predictions needs --task (cross_mmlu, cross_logiqa or a task .yaml)")
    summaries, records = score_predictions(predictions, _task(task, data), extractor, seed, n_boot)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(summaries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    items_path = out_path.with_name(out_path.stem + ".items.jsonl")
    items_path.write_text("".join(dumps_row(r) + "\n" for r in records), encoding="utf-8")
    for key, s in summaries.items():
        out.print(f"{key}: acc {s['overall_acc']:.4f}  con3 {s.get('consistency_score_3', float('nan')):.4f}  "
                  f"AC3_3 {s.get('AC3_3', float('nan')):.4f}  ({s['n_items']} items)")
    console.print(f"wrote {out_path} and per-item extractions to {items_path}")


def _evaluate(model, task_names, modes, out_dir, limit, languages, prompt, batch_size, dtype, extractor, seed,
              max_new_tokens, chat, data, n_boot) -> None:
    from crosstune.eval.runner import run_task
    from crosstune.eval.scorers import GenerateScorer, LoglikScorer
    from crosstune.eval.tasks import load_items
    from crosstune.models.backends import build_backend

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise CrosstuneError(f"--mode {','.join(modes)}: expected loglik, generate or loglik,generate")
    cfgs = [_task(name, data) for name in task_names]
    loaded = [(cfg, load_items(cfg, languages or None, prompt, limit)) for cfg in cfgs]  # fail fast on bad data
    backend = build_backend(model, dtype=dtype, batch_size=batch_size)
    for cfg, items in loaded:
        for m in modes:
            scorer = LoglikScorer(cfg) if m == "loglik" else GenerateScorer(cfg, extractor, seed, chat, max_new_tokens)
            s = run_task(backend, cfg, scorer, items, out_dir, model, prompt or cfg.default_prompt,
                         n_boot=n_boot, seed=seed)
            out.print(f"{cfg.name} {m}: acc {s['overall_acc']:.4f}  con3 {s.get('consistency_score_3', float('nan')):.4f}"
                      f"  AC3_3 {s.get('AC3_3', float('nan')):.4f}  ({s['n_items']} items x {len(s['languages'])} langs)")
    _write_index(out_dir, model)


def _write_index(out_dir: Path, model: str) -> None:
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
