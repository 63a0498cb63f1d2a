"""What each stage kind does, by composing the package's own functions: data build, train, evaluation suites.

A stage function gets the stage, the run context and its upstream stages' results; it writes into `stage.dir`
(which may hold a killed attempt: training and evaluation resume from what is there) and returns a small
JSON-able result that the runner stores in the stage's done-marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crosstune.experiments.plan import Plan, Stage


@dataclass
class Context:
    plan: Plan
    out_dir: Path
    data_root: Path | None

    def path(self, stage: Stage) -> Path:
        return self.out_dir / stage.dir


def run_data(stage: Stage, ctx: Context, deps: dict[str, dict]) -> dict:
    from crosstune.data.build import run_build

    res = run_build(stage.payload["plan"], ctx.path(stage))
    counts = res.manifest["counts"]
    return {"rows": counts["rows"], "per_mode": counts["per_mode"], "per_language_pair": counts["per_language_pair"],
            "train_jsonl": str(Path(stage.dir) / "train.jsonl"), "build_seconds": round(sum(res.timings.values()), 2)}


def run_train(stage: Stage, ctx: Context, deps: dict[str, dict]) -> dict:
    from crosstune.train import checkpoint
    from crosstune.train.loop import train
    from crosstune.train.plot import read_log

    out = ctx.path(stage)
    data = [ctx.out_dir / r["train_jsonl"] for r in deps.values()]
    update = {"data": str(data[0]), "output_dir": str(out)}
    if len(data) > 1:
        update["eval_data"] = str(data[1])
    cfg = stage.payload["config"].model_copy(update=update)
    resume = out.exists() and checkpoint.latest(out) is not None
    result = train(cfg, resume=resume)
    if result is None:  # a helper process of a multi-process launch: process 0 reports the stage
        return {}
    log = read_log(out)
    last_eval = next((r for r in reversed(log) if "eval_loss" in r), None)
    first = log[0].get("initial_eval") if log else None
    return {"steps": result["steps"], "final_loss": result["final_loss"],
            "model": str(Path(stage.dir) / "merged") if "merged" in result else str(Path(stage.dir) / "model"),
            "eval_loss": last_eval["eval_loss"] if last_eval else None,
            "eval_loss_by_language": last_eval["eval_loss_by_language"] if last_eval else {},
            "initial_eval_loss": first["loss"] if first else None,
            "initial_eval_loss_by_language": first["loss_by_language"] if first else {},
            "log": str(Path(stage.dir) / "log.jsonl")}


def _model_spec(stage: Stage, ctx: Context, deps: dict[str, dict]) -> str:
    if not deps:
        return ctx.plan.experiment.model
    (res,) = deps.values()
    return str(ctx.out_dir / res["model"])


def run_eval(stage: Stage, ctx: Context, deps: dict[str, dict]) -> dict:
    from crosstune.experiments.config import ConsistencySuite

    suite = stage.payload["suite"]
    if stage.settings.get("kind") == "judge":
        from crosstune.experiments.judging import run_judge_suite

        return run_judge_suite(stage, ctx, deps)
    if isinstance(suite, ConsistencySuite):
        return _consistency(stage, ctx, suite, _model_spec(stage, ctx, deps))
    if "object" in stage.payload["loaded"]:  # a user's suite kind (experiments/suites.py)
        from crosstune.experiments.suites import run_custom_suite

        return run_custom_suite(stage.settings["suite"], stage.payload["loaded"]["object"],
                                _model_spec(stage, ctx, deps), ctx.path(stage), ctx.plan.experiment.seed)
    from crosstune.experiments.generation import run_generation_suite

    return run_generation_suite(stage, ctx, suite, _model_spec(stage, ctx, deps))


def _consistency(stage: Stage, ctx: Context, suite, model: str) -> dict:
    """The evaluation engine of `eval consistency` (OUT/<task>/<mode>/ inside the stage), through the call cache."""
    from crosstune.eval.evaluate import Job, run_jobs
    from crosstune.models.backends import cached_backend
    from crosstune.eval.scorers import build_scorer
    from crosstune.report.evaluation import write_eval_report

    seed = ctx.plan.experiment.seed
    jobs = []
    for cfg, items in stage.payload["loaded"]["tasks"].values():
        scorer = build_scorer(cfg, suite.mode, seed=seed)
        jobs.append(Job(cfg, items, scorer, ctx.path(stage) / cfg.name / scorer.mode,
                        suite.prompt or cfg.default_prompt, {"scaffolding": cfg.scaffolding}))
    # the label in run.json names the arm, not the folder, so a moved output folder still resumes
    backend = cached_backend(model, dtype="float32", batch_size=suite.batch_size)
    summaries = run_jobs(backend, jobs, stage.payload["arm"],
                         n_boot=suite.n_boot, seed=seed, data_root=ctx.data_root)
    from crosstune.distributed import state

    if state().is_main:  # one writer under a multi-process launch
        write_eval_report(ctx.path(stage), f"Consistency: {stage.payload['arm']}", by_mode=True)
    out: dict = {}
    for job, s in zip(jobs, summaries):
        rel = Path(stage.dir) / job.cfg.name / job.scorer.mode
        out[job.cfg.name] = {"dir": str(rel), "n_items": s["n_items"], "languages": s["languages"],
                             "acc": s["overall_acc"], "language_acc": s["language_acc"],
                             "con3": s.get("consistency_score_3"), "ac3": s.get("AC3_3"),
                             "ci95": s.get("ci95", {}), "agreement": s.get("agreement", {}),
                             "per_item": str(rel / "predictions.jsonl")}
    return {"kind": "consistency", "tasks": out}


KINDS = {"data": run_data, "train": run_train, "eval": run_eval}
