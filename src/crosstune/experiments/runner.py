"""Run an experiment's stage graph with a content-hash cache: done stages are skipped, failures recorded.

Each stage folder gets `done.json` (its key and result) only when it completes, written atomically; a rerun
skips stages whose marker carries their key, resumes the rest from what a killed attempt left (training from its
last checkpoint, evaluation from its predictions file), and never reruns a finished stage. A stage that raises
is recorded in `error.json` and in the results; stages that depend on it are skipped; the others still run.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from crosstune.console import console
from crosstune.errors import shorten
from crosstune.experiments.config import load_experiment
from crosstune.experiments.plan import Plan, make_plan
from crosstune.experiments.results import write_results
from crosstune.experiments.stages import KINDS, Context
from crosstune.paths import data_root_if_set
from crosstune.threads import set_threads


def quiet_libraries() -> None:
    """Keep library chatter that means nothing to the user off the screen (warnings, not errors)."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", module=r"(transformers|peft|accelerate|torch)(\..*)?")
    for name in ("transformers", "peft", "accelerate", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _done(path: Path, key: str) -> dict | None:
    marker = path / "done.json"
    if not marker.is_file():
        return None
    try:
        rec = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return rec if rec.get("key") == key else None


def run_stages(plan: Plan, out_dir: Path, data_root: Path | None = None) -> dict[str, dict]:
    """Run (or skip) every stage in order; returns {stage name: {status, key, dir, result | error, seconds}}."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ctx = Context(plan, out_dir, data_root)
    status: dict[str, dict] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        bar = progress.add_task(f"{plan.experiment.name}: stages", total=len(plan.stages))
        for name, stage in plan.stages.items():
            label = escape(name)
            path = ctx.path(stage)
            rec = {"key": stage.key, "dir": str(stage.dir), "kind": stage.kind}
            done = _done(path, stage.key)
            failed_deps = [d for d in stage.deps if status[d]["status"] != "ok"]
            if done:
                rec.update(status="ok", cached=True, result=done["result"], seconds=done.get("seconds"))
                console.print(f"[dim]cached  {label}[/dim]")
            elif failed_deps:
                rec.update(status="skipped", error=f"upstream stage failed: {', '.join(failed_deps)}")
                console.print(f"[yellow]skipped[/] {label}: {escape(rec['error'])}")
            else:
                progress.update(bar, description=label)
                console.rule(f"[bold]{label}")
                path.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                try:
                    result = KINDS[stage.kind](stage, ctx, {d: status[d]["result"] for d in stage.deps})
                except Exception as e:  # noqa: BLE001 - a crashing stage is recorded, the others go on
                    err = shorten(f"{type(e).__name__}: {e}")  # the whole text is in the traceback
                    _write_json(path / "error.json", {"key": stage.key, "error": err,
                                                      "traceback": traceback.format_exc()})
                    rec.update(status="failed", error=err, seconds=round(time.perf_counter() - t0, 2))
                    console.print(f"[red]failed[/]  {label}: {escape(err)} (traceback in {path / 'error.json'})")
                else:
                    secs = round(time.perf_counter() - t0, 2)
                    (path / "error.json").unlink(missing_ok=True)
                    _write_json(path / "done.json", {"key": stage.key, "stage": name, "result": result,
                                                     "seconds": secs})
                    rec.update(status="ok", cached=False, result=result, seconds=secs)
                    console.print(f"[green]done[/]    {label} ({secs:.1f} s)")
            status[name] = rec
            progress.advance(bar)
        progress.update(bar, description=f"{plan.experiment.name}: stages")
    return status


def run_experiment(path: str | Path, out_dir: str | Path, overrides: list[str] | None = None,
                   data_root: Path | None = None, report: bool = True) -> dict:
    """Validate everything, run the stages (a rerun is the resume), write results.csv/jsonl and the report."""
    out_dir = Path(out_dir)
    exp = load_experiment(path, overrides)
    root = data_root_if_set(data_root)
    plan = make_plan(exp, path, root)  # every stage validated before any work
    quiet_libraries()  # (imports transformers: after validation, so a bad file fails in a moment)
    set_threads(exp.threads)
    from crosstune.locks import folder_lock

    with folder_lock(out_dir, "run"):  # a second `crosstune run` on this folder refuses, naming this one
        return _run_locked(exp, plan, path, out_dir, overrides, root, report)


def _history(out_dir: Path, rec: dict) -> None:
    """Append one line to run_history.jsonl, flushed at once: a killed invocation still leaves its start line."""
    with open(out_dir / "run_history.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), **rec},
                           ensure_ascii=False) + "\n")


def _run_locked(exp, plan: Plan, path, out_dir: Path, overrides, root, report: bool) -> dict:
    _write_json(out_dir / "experiment.json", {"source": str(path), "overrides": overrides or [],
                                              "experiment": exp.model_dump(mode="json"),
                                              "stages": {n: {"key": s.key, "dir": str(s.dir), "deps": s.deps}
                                                         for n, s in plan.stages.items()}})
    n_data = sum(s.kind == "data" for s in plan.stages.values())
    console.print(f"{exp.name}: {len(plan.arms)} arms, {len(plan.stages)} stages "
                  f"({n_data} data, {sum(s.kind == 'train' for s in plan.stages.values())} train, "
                  f"{sum(s.kind == 'eval' for s in plan.stages.values())} eval) -> {out_dir}")
    _history(out_dir, {"event": "start", "overrides": overrides or []})
    t0 = time.perf_counter()
    try:
        status = run_stages(plan, out_dir, root)
    except BaseException as e:  # interrupted (Ctrl-C, SIGTERM as SystemExit): say so before leaving; -9 leaves
        _history(out_dir, {"event": "interrupted", "error": type(e).__name__,  # the start line alone
                           "seconds": round(time.perf_counter() - t0, 2)})
        raise
    rows = write_results(plan, status, out_dir)
    summary = {"stages": status, "rows": rows, "seconds": round(time.perf_counter() - t0, 2),
               "ran": [n for n, s in status.items() if s["status"] == "ok" and not s.get("cached")],
               "cached": [n for n, s in status.items() if s.get("cached")],
               "failed": [n for n, s in status.items() if s["status"] == "failed"],
               "skipped": [n for n, s in status.items() if s["status"] == "skipped"]}
    _history(out_dir, {"event": "end", **{k: summary[k] for k in ("ran", "cached", "failed", "skipped", "seconds")}})
    if report:
        from crosstune.report.html import write_report

        summary["report"] = str(write_report(out_dir))
    return summary
