"""`crosstune quickstart` on a user's fresh machine: no ../shared, no data root, any working directory."""

import csv
import json
import os

import pytest


@pytest.mark.integration
@pytest.mark.slow
def test_quickstart_needs_nothing_outside_the_package(tmp_path, monkeypatch, default_model_dir, capsys):
    monkeypatch.setenv("CROSSTUNE_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CROSSTUNE_DATA", str(tmp_path / "no_data_here"))
    cwd = tmp_path / "somewhere_else"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    from tests.conftest import run_main
    import crosstune.threads

    monkeypatch.setattr(crosstune.threads, "_decided", None)  # as in a fresh process: the decision is said

    code, cap = run_main(["quickstart", "--out", "qs", "--steps", "2", "--prompt-limit", "1", "--mc-limit", "2",
                          "--threads", "1"], capsys)
    assert code == 0, cap.err[-3000:]
    out = cwd / "qs"
    rows = {r["arm"]: r for r in csv.DictReader((out / "results.csv").open(encoding="utf-8"))}
    assert set(rows) == {"untuned", "CrossIn LoRA"} and all(r["status"] == "ok" for r in rows.values())
    for r in rows.values():  # fidelity of "Answer in X" on English prompts, and the demo MC set, before and after
        for lang in ("zh", "es", "vi"):
            assert 0 <= float(r[f"answer_in.en:answer_in:{lang}.fidelity"]) <= 1
        assert 0 <= float(r["mc.demo_mc.acc"]) <= 1
    assert float(rows["CrossIn LoRA"]["steps"]) == 2 and rows["CrossIn LoRA"]["eval_loss.zh"]
    assert (out / "report" / "index.html").is_file() and list((out / "report").glob("*.png"))
    data = [json.loads(x) for x in next(out.glob("stages/data/crossin-*/train.jsonl")).read_text().splitlines()]
    assert {r["meta"]["mode"] for r in data} == {"base", "en2x", "x2en", "translate"}
    assert "embedded demo set" in cap.err and "before (untuned) vs after" in cap.out
    assert "threads: 1 (as set by --threads" in cap.err
    assert json.loads((out / "experiment.json").read_text())["experiment"]["threads"] == 1
    assert not any("shared" in str(p) for p in os.listdir(cwd))
