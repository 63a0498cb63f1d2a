import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosstune.errors import CrosstuneError
from tests.experiments.conftest import write_experiment


def _history(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "run_history.jsonl").read_text().splitlines()]


def _done_stages(out: Path) -> set[str]:
    return {json.loads(p.read_text())["stage"] for p in out.glob("stages/*/*/done.json")}


def test_sweep_killed_halfway_resumes_without_rerunning_done_stages(tmp_path, tiny_model_dir, isolated_env):
    """A real second process runs the sweep and is SIGKILLed right after the first training stage finishes; the
    rerun (in this process) skips every stage that had finished, runs the rest; a third run runs nothing."""
    from crosstune.experiments.runner import run_experiment

    exp = write_experiment(tmp_path, tiny_model_dir)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "crosstune", "run", str(exp), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(s.startswith("train/") for s in _done_stages(out) if (out / "stages").exists()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _done_stages(out)
    assert any(s.startswith("train/") for s in before)
    summary = run_experiment(exp, out)
    all_stages = set(summary["stages"])
    assert len([s for s in all_stages if s.startswith("train/")]) == 3  # the r sweep: 3 variants
    assert before < all_stages, "the kill came after everything had finished"
    assert set(summary["cached"]) == before  # done before the kill: not rerun
    assert set(summary["ran"]) == all_stages - before  # the rest ran once
    assert not summary["failed"] and not summary["skipped"]
    again = run_experiment(exp, out)
    assert again["ran"] == [] and set(again["cached"]) == all_stages  # a rerun is the resume: nothing to do
    hist = _history(out)  # the killed run left its start line (and no end line); each finished run both
    assert [h["event"] for h in hist] == ["start", "start", "end", "start", "end"]
    assert hist[0]["pid"] == proc.pid
    assert [len(h["ran"]) for h in hist if h["event"] == "end"] == [len(all_stages - before), 0]
    # results across runs: one row per arm (untuned + 3 ranks), with the swept value and every metric
    import csv

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["arm"] for r in rows] == ["untuned", "crossin+lora[r=2]", "crossin+lora[r=4]", "crossin+lora[r=8]"]
    assert [r["train.lora.lora.r"] for r in rows] == ["", "2", "4", "8"]
    assert all(r["status"] == "ok" and r["mc.demo_mc.acc"] != "" for r in rows)
    assert all(r["fid.en:answer_in:zh.fidelity"] != "" for r in rows)
    assert all(r["eval_loss.zh"] != "" for r in rows[1:])
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert recs[0]["baseline"] is True and recs[1]["params"] == {"train.lora.lora.r": 2}
    assert (out / "report" / "index.html").is_file()


def test_changed_setting_reruns_only_what_depends_on_it(tmp_path, tiny_model_dir, isolated_env):
    from crosstune.experiments.runner import run_experiment

    out = tmp_path / "out"
    first = run_experiment(write_experiment(tmp_path, tiny_model_dir, **{"sweep/train.lora.lora.r": [2]}), out,
                           report=False)
    assert not first["failed"]
    # a new evaluation limit: the data and training stages are cached, only the MC evaluations run again
    second = run_experiment(write_experiment(tmp_path, tiny_model_dir, **{"sweep/train.lora.lora.r": [2],
                                                                          "eval/mc/limit": 4}), out, report=False)
    assert sorted(second["ran"]) == ["eval/mc/crossin+lora[r=2]", "eval/mc/untuned"]
    assert {s.split("/")[0] for s in second["cached"]} == {"data", "train", "eval"}


def test_a_crashing_stage_is_recorded_and_the_others_kept(tmp_path, tiny_model_dir, isolated_env):
    """r=2 trains; a second train entry that cannot run (every row dropped at max_length 8 with overflow=drop)
    fails at run time: its error is in results.csv/jsonl and the report, its evaluations are skipped, the rest
    completes."""
    from crosstune.experiments.runner import run_experiment

    exp = write_experiment(tmp_path, tiny_model_dir, **{"sweep": {}, "eval/fid": None})
    import yaml

    cfg = yaml.safe_load(exp.read_text())
    cfg["train"]["broken"] = {"config": cfg["train"]["lora"]["config"],
                              "overrides": {"tokenize.max_length": 9, "tokenize.overflow": "drop"}}
    exp.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    summary = run_experiment(exp, out)
    assert summary["failed"] == ["train/crossin+broken"]
    assert summary["skipped"] == ["eval/mc/crossin+broken"]
    assert "eval/mc/crossin+lora" in summary["ran"]
    import csv

    rows = {r["arm"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert rows["crossin+lora"]["status"] == "ok" and rows["crossin+broken"]["status"] == "failed"
    assert "dropped" in rows["crossin+broken"]["error"]
    err = json.loads(next(out.glob("stages/train/crossin+broken-*/error.json")).read_text())
    assert "Traceback" in err["traceback"]
    html = (out / "report" / "index.html").read_text()
    assert "Failed or skipped stages" in html and "train/crossin+broken" in html
    # the failed stage is retried on the next run (no done-marker), the finished ones are not
    again = run_experiment(exp, out, report=False)
    assert again["failed"] == ["train/crossin+broken"] and again["ran"] == []


@pytest.mark.parametrize("change, message", [
    ({"data/crossin/recipe": "recipes/nope.yaml"}, "field 'data.crossin.recipe': 'recipes/nope.yaml': not found (looked in"),
    ({"train/lora/overrides": {"lora.rank": 4}}, "unknown key 'lora.rank'"),
    ({"eval/mc/tasks": ["no_such_task"]}, "task 'no_such_task': no such task file"),
    ({"sweep": {"train.lora.lora.rnk": [1, 2]}}, "unknown key 'lora.rnk'"),
    ({"sweep": {"data.pinch.recipe.percent": [1, 10]}}, "no data entry 'pinch'"),
    ({"sweep": {"data.crossin.recipe.volume": [1, 10]}}, "volume"),
    ({"sweep": {"model": [1]}}, "expected data.<entry>.<key>"),
    ({"arms": [{"name": "a", "data": "crossin", "train": "qlora"}]}, "train 'qlora' is not a train entry"),
    ({"baseline": "nobody"}, "baseline 'nobody' is not an arm"),
    ({"evall": {}}, "unknown key 'evall'"),
    ({"data/crossin/overrides": {"recipe.modes": {"base": "${missing}"}}}, "${missing} is used but not defined"),
    ({"eval/side": {"kind": "judge", "generations": "mc"}}, "eval.side.generations: 'mc' is not a generation suite"),
    ({"eval/side": {"kind": "judge", "generations": "fid", "reference": "gpt"}},
     "eval.side.reference 'gpt' is not an arm"),
    ({"eval/side": {"kind": "judge", "generations": "fid", "conditions": ["zh:tag:en"]}},
     "['zh:tag:en'] are not conditions of eval.fid (en:answer_in:zh)"),
    ({"eval/side": {"kind": "judge", "generations": "fid", "protocol": "mt-bench"}},
     "eval.side: protocol: unknown judge protocol 'mt-bench'; expected one of xinstruct, pinch"),
])
def test_bad_experiment_files_fail_before_any_work(tmp_path, tiny_model_dir, isolated_env, change, message):
    from crosstune.experiments.runner import run_experiment

    exp = write_experiment(tmp_path, tiny_model_dir, **change)
    with pytest.raises(CrosstuneError) as e:
        run_experiment(exp, tmp_path / "out")
    assert message in str(e.value)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_cli_error_is_one_line(tmp_path, tiny_model_dir, isolated_env, capsys):
    from tests.conftest import run_main

    exp = write_experiment(tmp_path, tiny_model_dir, **{"eval/mc/tasks": ["no_such_task"]})
    code, cap = run_main(["run", str(exp), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert cap.err.strip().startswith("error: ") and "no_such_task" in cap.err and "Traceback" not in cap.err
