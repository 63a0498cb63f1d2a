"""Run an experiment's stage graph with a content-hash cache: done stages are skipped, failures recorded.

Each stage folder gets `done.json` (its key and result) only when it completes, written atomically; a rerun
skips stages whose marker carries their key, resumes the rest from what a killed attempt left (training from its
last checkpoint, evaluation from its predictions file), and never reruns a finished stage. A stage that raises
is recorded in `error.json` and in the results; stages that depend on it are skipped; the others still run.

Under `accelerate launch` / `torchrun` every process runs this loop: training and the built-in model-bound suites
(consistency, generation, judge, lcb; a user's suite object with `data_parallel = True`) run on every process and
split their work (`crosstune.distributed`); data builds and other suites run on process 0 while the others wait.
Process 0 alone writes markers, results and the report, and every process takes process 0's record of each stage.
A stage that fails on one process of such a launch stops the launch (the others cannot finish it without that
process): its error is in `error.json`, and the rerun resumes.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from crosstune import distributed
from crosstune.console import console
from crosstune.errors import CrosstuneError, shorten
from crosstune.experiments.config import load_experiment
from crosstune.experiments.plan import Plan, make_plan
from crosstune.experiments.results import write_results
from crosstune.experiments.stages import KINDS, Context
from crosstune.paths import data_root_if_set
from crosstune.quiet import quiet_libraries
from crosstune.threads import set_threads


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


def on_every_process(stage) -> bool:
    """Whether a stage runs on every process of a multi-process launch (it splits its own work), not on process 0
    alone: training, and the built-in model-bound suites or a user's suite object that sets `data_parallel`."""
    if stage.kind == "train":
        return True
    if stage.kind != "eval":
        return False
    obj = stage.payload.get("loaded", {}).get("object")
    return obj is None or bool(getattr(obj, "data_parallel", False))


def run_stages(plan: Plan, out_dir: Path, data_root: Path | None = None) -> dict[str, dict]:
    """Run (or skip) every stage in order; returns {stage name: {status, key, dir, result | error, seconds}}."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ctx = Context(plan, out_dir, data_root)
    st = distributed.state()
    say = console.print if st.is_main else (lambda *a, **k: None)
    status: dict[str, dict] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=not st.is_main) as progress:
        bar = progress.add_task(f"{plan.experiment.name}: stages", total=len(plan.stages))
        for name, stage in plan.stages.items():
            label = escape(name)
            path = ctx.path(stage)
            rec = {"key": stage.key, "dir": str(stage.dir), "kind": stage.kind}
            done = _done(path, stage.key)
            if st.world > 1:  # process 0's view decides, so every process takes the same branch
                done = st.gather(done)[0]
            failed_deps = [d for d in stage.deps if status[d]["status"] != "ok"]
            if done:
                rec.update(status="ok", cached=True, result=done["result"], seconds=done.get("seconds"))
                say(f"[dim]cached  {label}[/dim]")
            elif failed_deps:
                rec.update(status="skipped", error=f"upstream stage failed: {', '.join(failed_deps)}")
                say(f"[yellow]skipped[/] {label}: {escape(rec['error'])}")
            else:
                progress.update(bar, description=label)
                if st.is_main:
                    console.rule(f"[bold]{label}")
                path.mkdir(parents=True, exist_ok=True)
                everywhere = st.world > 1 and on_every_process(stage)
                t0 = time.perf_counter()
                try:
                    if st.is_main or everywhere:
                        result = KINDS[stage.kind](stage, ctx, {d: status[d]["result"] for d in stage.deps})
                except Exception as e:  # noqa: BLE001 - a crashing stage is recorded, the others go on
                    err = shorten(f"{type(e).__name__}: {e}")  # the whole text is in the traceback
                    _write_json(path / ("error.json" if st.is_main else f"error.part{st.rank}.json"), {
                        "key": stage.key, "error": err, "traceback": traceback.format_exc()})
                    rec.update(status="failed", error=err, seconds=round(time.perf_counter() - t0, 2))
                    say(f"[red]failed[/]  {label}: {escape(err)} (traceback in {path / 'error.json'})")
                    if everywhere:  # the other processes wait for this one inside the stage: stop the launch
                        raise CrosstuneError(f"stage {name} failed on process {st.rank} of {st.world}: {err}; a "
                                             "multi-process launch stops there; rerun to resume (finished stages "
                                             "and rows are kept)") from e
                else:
                    secs = round(time.perf_counter() - t0, 2)
                    if st.is_main:
                        (path / "error.json").unlink(missing_ok=True)
                        _write_json(path / "done.json", {"key": stage.key, "stage": name, "result": result,
                                                         "seconds": secs})
                    rec.update(status="ok", cached=False, result=result if st.is_main else None, seconds=secs)
                    say(f"[green]done[/]    {label} ({secs:.1f} s)")
                if st.world > 1:  # every process goes on with process 0's record (its result names the files)
                    rec = st.gather(rec)[0]
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
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an experiment downloads nothing: a hub id must be cached
    set_threads(exp.threads)
    from crosstune.eval.rundir import run_lock

    # a second `crosstune run` on this folder refuses, naming this one; the processes of one launch share the lock
    # (quiet_libraries imports transformers: after validation, so a bad file fails in a moment)
    with quiet_libraries(), run_lock(out_dir, "run", distributed.state().is_main):
        return _run_locked(exp, plan, path, out_dir, overrides, root, report)


def _history(out_dir: Path, rec: dict) -> None:
    """Append one line to run_history.jsonl, flushed at once: a killed invocation still leaves its start line."""
    with open(out_dir / "run_history.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), **rec},
                           ensure_ascii=False) + "\n")


def _run_locked(exp, plan: Plan, path, out_dir: Path, overrides, root, report: bool) -> dict:
    if not distributed.state().is_main:  # a helper process of a launch: the stages only; process 0 writes the rest
        status = run_stages(plan, out_dir, root)
        return {"stages": status, "rows": [], "seconds": 0.0, "helper_process": True,
                **{k: [n for n, s in status.items() if s["status"] == k] for k in ("failed", "skipped")},
                "ran": [], "cached": []}
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
