"""Generation suites in an experiment: `crosstune.eval.generation` per condition, then `crosstune.eval.fidelity`.

A condition is (directive, target language, prompt languages), e.g. English prompts + " Answer in Chinese.";
each gets its own generation folder (resumable, through the call cache) and fidelity folder inside the stage.
Under a multi-process launch every process generates its share of each condition (`crosstune.eval.generation`)
and process 0 scores fidelity and returns the stage's result.
"""

from __future__ import annotations

from pathlib import Path

from crosstune.errors import CrosstuneError


def run_label(run) -> str:
    langs = "+".join(run.languages) if run.languages else "all"
    return f"{langs}:{run.directive}" + (f":{run.target_language}" if run.target_language else "")


def _items(suite, run, data_root: Path | None, where: str):
    from crosstune.eval.generation import load_items
    from crosstune.experiments.plan import expand_placeholders
    from crosstune.languages import normalize

    try:
        items = load_items(expand_placeholders(list(suite.prompts), data_root))
        keep = {normalize(x) for x in run.languages} if run.languages else {it.language for it in items}
        seen: dict[str, int] = {}
        picked = []
        for it in items:  # the first `limit` prompts of each language
            if it.language in keep and (suite.limit is None or seen.get(it.language, 0) < suite.limit):
                seen[it.language] = seen.get(it.language, 0) + 1
                picked.append(it)
        items = picked
    except CrosstuneError as e:
        raise CrosstuneError(f"{where}: {e}") from None
    if not items:
        raise CrosstuneError(f"{where}: no prompts in languages {run.languages} in {suite.prompts}")
    return items


def check_generation_suite(name: str, suite, data_root: Path | None) -> dict:
    """Read every condition's prompts and check its directive now, before any stage runs."""
    from crosstune.eval.fidelity import build_detector
    from crosstune.eval.generation import Decoding, plan_generation

    labels = [run_label(r) for r in suite.runs]
    if len(set(labels)) != len(labels):
        raise CrosstuneError(f"eval.{name}.runs: conditions repeat ({labels})")
    loaded = {}
    for run, label in zip(suite.runs, labels):
        items = _items(suite, run, data_root, f"eval.{name} ({label})")
        try:
            plan_generation(items[:1], Decoding(max_new_tokens=suite.max_new_tokens), run.directive,
                            run.target_language)
        except CrosstuneError as e:
            raise CrosstuneError(f"eval.{name} ({label}): {e}") from None
        loaded[label] = (run, items)
    try:
        build_detector(suite.lid)
    except CrosstuneError as e:
        raise CrosstuneError(f"eval.{name}.lid: {e}") from None
    return {"runs": loaded}


def run_generation_suite(stage, ctx, suite, model: str) -> dict:
    from crosstune.distributed import state
    from crosstune.eval.fidelity import run_fidelity
    from crosstune.eval.generation import Decoding, run_generation
    from crosstune.models.backends import cached_backend
    from crosstune.report.fidelity import write_fidelity_report

    backend = cached_backend(model, dtype="float32", batch_size=suite.batch_size)
    decoding = Decoding(max_new_tokens=suite.max_new_tokens, seed=ctx.plan.experiment.seed)
    out: dict = {}
    for label, (run, items) in stage.payload["loaded"]["runs"].items():
        safe = label.replace(":", "_").replace("+", "-")
        gen_dir, fid_dir = ctx.path(stage) / "generate" / safe, ctx.path(stage) / "fidelity" / safe
        run_generation(backend, items, gen_dir, model=stage.payload["arm"], decoding=decoding,
                       directive=run.directive, target_language=run.target_language)
        if not state().is_main:  # the generations are merged; process 0 scores them
            continue
        fid = run_fidelity(gen_dir, fid_dir, lid=suite.lid, n_boot=suite.n_boot, seed=ctx.plan.experiment.seed)
        write_fidelity_report(fid_dir, fid)
        rel = Path(stage.dir)
        out[label] = {"generate_dir": str(rel / "generate" / safe), "fidelity_dir": str(rel / "fidelity" / safe),
                      "directive": run.directive, "target_language": run.target_language,
                      "overall": fid["overall"].get("expected_rate"), "overall_ci95": fid["overall"].get(
                          "expected_rate_95"),
                      "per_language": {k: {"rate": v.get("expected_rate"), "ci95": v.get("expected_rate_95"),
                                           "n": v.get("n")} for k, v in fid["per_language"].items()},
                      "confusion": fid["confusion"]}
    return {"kind": "generation", "runs": out}
