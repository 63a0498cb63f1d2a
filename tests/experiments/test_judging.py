"""Judge suites in experiments: one stage per arm vs the reference, after the generations it reads, resumable."""

import json

from tests.experiments.conftest import write_experiment


def test_judge_stage_per_arm_reads_generations_and_resumes_from_the_cache(tmp_path, tiny_model_dir, isolated_env):
    from crosstune.experiments.runner import run_experiment

    judge = {"kind": "judge", "generations": "fid", "judge": str(tiny_model_dir), "reference": "crossin",
             "lid": "pycld2", "n_boot": 20, "max_new_tokens": 4}
    exp = write_experiment(tmp_path, tiny_model_dir, **{"sweep": None, "eval/mc": None, "eval/side": judge})
    out = tmp_path / "out"
    summary = run_experiment(exp, out, report=False)
    assert not summary["failed"]
    names = list(summary["stages"])
    # the reference arm is not judged against itself; the judge runs after both generation stages
    assert [n for n in names if n.startswith("eval/side/")] == ["eval/side/untuned"]
    assert names.index("eval/side/untuned") > max(names.index("eval/fid/untuned"), names.index("eval/fid/crossin"))
    res = summary["stages"]["eval/side/untuned"]["result"]
    cond = res["conditions"]["en:answer_in:zh"]
    assert res["reference"] == "crossin" and cond["pairs"] == 1
    assert 1 <= cond["calls"] <= 2  # one pair, both orders (one call when the two prompts are the same)
    items = [json.loads(x) for x in (out / cond["dir"] / "items.jsonl").read_text().splitlines()]
    assert len(items) == 1 and set(items[0]["orders"]) == {"ab", "ba"}
    assert (out / cond["dir"] / "results.md").read_text().startswith("### Judge")  # the report's table
    rows = {r["arm"]: r for r in summary["rows"]}
    assert "side.en:answer_in:zh.judge" in rows["untuned"]
    # a killed judge stage (no done marker) reruns from the call cache: no judge call is made twice
    (out / summary["stages"]["eval/side/untuned"]["dir"] / "done.json").unlink()
    again = run_experiment(exp, out, report=False)
    assert again["ran"] == ["eval/side/untuned"]
    cond = again["stages"]["eval/side/untuned"]["result"]["conditions"]["en:answer_in:zh"]
    assert cond["calls"] == 0 and cond["cache_hits"] == 2
