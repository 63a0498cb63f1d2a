"""Judge suites in an experiment: every arm's generations vs a reference arm's, judged pairwise in both orders.

A judge suite names a generation suite of the same experiment; its stages (one per arm, the reference excepted)
depend on that arm's and the reference's generation stages, so a changed generation re-judges only what it
touches. Each condition (e.g. `en:answer_in:zh`) is judged by `crosstune.eval.judge.run_judge` into its own folder
inside the stage; every call goes through the call cache, so a killed stage resumes without repeating calls.
Under a multi-process launch each process judges its share of the pairs (`crosstune.eval.judge`); process 0 writes.
"""

from __future__ import annotations

from pathlib import Path

from crosstune.errors import CrosstuneError


def check_judge_suite(name: str, suite, exp) -> dict:
    """What can be known before any work: the generation suite exists, conditions are among its, the protocol's
    prompt and the language detector load."""
    from crosstune.eval import judge_protocols as jp
    from crosstune.eval.fidelity import build_detector
    from crosstune.experiments.config import GenerationSuite
    from crosstune.experiments.generation import run_label

    gen = exp.eval.get(suite.generations)
    if not isinstance(gen, GenerationSuite):
        kinds = [n for n, s in exp.eval.items() if isinstance(s, GenerationSuite)]
        raise CrosstuneError(f"eval.{name}.generations: {suite.generations!r} is not a generation suite of this "
                             f"experiment (generation suites: {', '.join(kinds) or 'none'})")
    labels = [run_label(r) for r in gen.runs]
    if suite.conditions is not None:
        unknown = [c for c in suite.conditions if c not in labels]
        if unknown:
            raise CrosstuneError(f"eval.{name}.conditions: {unknown} are not conditions of eval.{suite.generations} "
                                 f"({', '.join(labels)})")
        labels = [c for c in labels if c in suite.conditions]
    try:
        jp.get_protocol(suite.protocol, "protocol")
        prompt = jp.load_prompt(suite.protocol, suite.prompt)
        build_detector(suite.lid)
    except CrosstuneError as e:
        raise CrosstuneError(f"eval.{name}: {e}") from None
    return {"conditions": labels, "prompt_text": [prompt.system, prompt.user]}  # hashed: an edited prompt re-judges


def judge_reference(name: str, suite, arm_names: list[str], baseline: str, src: str) -> str:
    ref = suite.reference or baseline
    if ref not in arm_names:
        raise CrosstuneError(f"{src}: eval.{name}.reference {ref!r} is not an arm; arms: {', '.join(arm_names)}")
    return ref


def run_judge_suite(stage, ctx, deps: dict[str, dict]) -> dict:
    from crosstune.distributed import state
    from crosstune.eval.judge import run_judge
    from crosstune.report.evaluation import write_judge_report

    suite, p = stage.payload["suite"], stage.payload
    arm_res, ref_res = deps[p["arm_stage"]], deps[p["reference_stage"]]
    out: dict = {}
    for label in p["loaded"]["conditions"]:
        a, b = arm_res["runs"].get(label), ref_res["runs"].get(label)
        if a is None or b is None:
            raise CrosstuneError(f"condition {label}: no generations in {p['arm_stage']} or {p['reference_stage']}")
        safe = label.replace(":", "_").replace("+", "-")
        s = run_judge(suite.judge, str(ctx.out_dir / a["generate_dir"]), [str(ctx.out_dir / b["generate_dir"])],
                      suite.protocol, ctx.path(stage) / safe, prompt_file=suite.prompt, gate_mode=suite.gate,
                      lid=suite.lid, n_boot=suite.n_boot, seed=ctx.plan.experiment.seed,
                      max_new_tokens=suite.max_new_tokens, limit=suite.limit)
        if not state().is_main:  # process 0 writes the report and the stage's result
            continue
        write_judge_report(ctx.path(stage) / safe, s)
        key = "gated" if s["gate"] else "ungated"

        def block(r: dict) -> dict:
            return {"score": r[key]["score"], "ci95": r[key]["score_95"], "n": r[key]["n"],
                    "win": r[key]["win"], "tie": r[key]["tie"], "loss": r[key]["loss"],
                    "ungated_score": r["ungated"]["score"], "flip_rate": r["position_bias"]["flip_rate"],
                    "parse_failures": r["parse_failures"]}

        out[label] = {"dir": str(Path(stage.dir) / safe), "reference": p["reference"], "gated": s["gate"],
                      "pairs": s["n_pairs"], "calls": s["calls"], "cache_hits": s["cache_hits"],
                      "position_bias": s["position_bias"], "parse_failures": s["parse_failures"]["failed"],
                      **block(s["overall"]),
                      "per_language": {lang: block(r) for lang, r in s["per_language"].items()}}
    return {"kind": "judge", "reference": p["reference"], "judge": suite.judge, "protocol": suite.protocol,
            "conditions": out}
