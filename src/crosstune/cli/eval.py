"""`crosstune eval ...`: parallel benchmarks, cross-lingual consistency, AC3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from crosstune.cli.eval_run import csv_list, data_overrides, write_report
from crosstune.console import console, out
from crosstune.errors import CrosstuneError
from crosstune.eval.extract import get_extractor
from crosstune.threads import set_threads

app = typer.Typer(help="Evaluate models language by language.", no_args_is_help=True)
app.command("generate")(__import__("crosstune.cli.eval_generate", fromlist=["x"]).generate)
app.command("fidelity")(__import__("crosstune.cli.eval_fidelity", fromlist=["x"]).fidelity)
app.command("judge")(__import__("crosstune.cli.eval_judge", fromlist=["x"]).judge)
app.command("run")(__import__("crosstune.cli.eval_run", fromlist=["x"]).run)
app.command("tasks")(__import__("crosstune.cli.eval_run", fromlist=["x"]).tasks)
app.command("compare")(__import__("crosstune.cli.eval_run", fromlist=["x"]).compare)


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
    extractor: str = typer.Option("seaeval", help="Answer extraction for generate: seaeval (TiGEr), crossin, "
                                                  "or package.module:function."),
    seed: int = typer.Option(0, help="Seeds the extraction fallback and the bootstrap."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Override the task's generation length."),
    chat: bool = typer.Option(True, help="Generate mode: wrap the prompt in the model's chat template."),
    template: Optional[str] = typer.Option(None, help="Prompt template (raw, auto, chat, alpaca, gemma, llama); "
                                                      "default raw for loglik, auto (--chat) for generate."),
    scaffolding: Optional[str] = typer.Option(None, help="english or native prompt words (default: the task's)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder task data paths are relative to (else $CROSSTUNE_DATA)."),
    data: list[str] = typer.Option([], help="TASK=PATH: read a task's data from PATH (repeatable)."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads (default: auto, the cores free at "
                                                            "start: threads that share a busy core spin and stall)."),
    cache: Optional[Path] = typer.Option(None, help="Call cache file (default $CROSSTUNE_CACHE/calls.sqlite)."),
) -> None:
    """Accuracy, Consistency_s and AC3_s on parallel multiple-choice tasks (SeaEval's metrics)."""
    if (predictions is None) == (model is None):
        raise CrosstuneError("give exactly one of --predictions FILE (score saved outputs) or --model M (evaluate)")
    get_extractor(extractor, "--extractor")  # seaeval, crossin or a user's package.module:function
    set_threads(threads)
    if predictions is not None:
        _score_file(predictions, task, out_path, extractor, seed, n_boot, data_overrides(data), data_root)
    else:
        from crosstune.eval.evaluate import evaluate_consistency

        results = evaluate_consistency(
            model, csv_list(tasks), csv_list(mode), out_path, limit=limit, languages=csv_list(languages) or None,
            prompt=prompt, batch_size=batch_size, dtype=dtype, extractor=extractor, seed=seed,
            max_new_tokens=max_new_tokens, chat=chat, template=template, scaffolding=scaffolding,
            data=data_overrides(data), data_root=data_root, n_boot=n_boot, cache=cache)
        write_report(out_path, f"Cross-lingual consistency: {model}", results, by_mode=True)


def _score_file(predictions, task, out_path, extractor, seed, n_boot, data, data_root) -> None:
    from crosstune.data.io import dumps_row
    from crosstune.eval.evaluate import task_with_data
    from crosstune.eval.predictions import score_predictions
    from crosstune.paths import Lookup

    if not task:
        raise CrosstuneError("--predictions needs --task (cross_mmlu, cross_logiqa or a task .yaml)")
    predictions = Lookup(root=data_root).spelled(predictions, what="--predictions")  # the data-root rule
    summaries, records = score_predictions(predictions, task_with_data(task, data), extractor, seed, n_boot,
                                           data_root=data_root)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(summaries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    items_path = out_path.with_name(out_path.stem + ".items.jsonl")
    items_path.write_text("".join(dumps_row(r) + "\n" for r in records), encoding="utf-8")
    for key, s in summaries.items():
        out.print(f"{key}: acc {s['overall_acc']:.4f}  con3 {s.get('consistency_score_3', float('nan')):.4f}  "
                  f"AC3_3 {s.get('AC3_3', float('nan')):.4f}  ({s['n_items']} items)")
    console.print(f"wrote {out_path} and per-item extractions to {items_path}")
