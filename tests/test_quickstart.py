import json

import pytest

from tests.conftest import SHARED_DATA, shared_path


@pytest.mark.integration
@pytest.mark.slow
def test_quickstart_runs_every_stage(tmp_path, default_model_dir):
    shared_path("alpaca_chinese_parallel")
    from crosstune.quickstart import run

    scores = run(tmp_path, SHARED_DATA, steps=2, per_mode=8, limit=2)
    assert set(scores) == {"base", "tuned"}
    for s in scores.values():
        assert set(s["language_acc"]) == {"en", "zh", "vi", "es"} and 0 <= s["AC3_3"] <= 1
    assert (tmp_path / "train" / "merged" / "config.json").is_file()
    rows = [json.loads(x) for x in (tmp_path / "data" / "train.jsonl").read_text().splitlines()]
    assert {r["meta"]["mode"] for r in rows} >= {"base", "en2x", "x2en"}
    assert "| tuned |" in (tmp_path / "report.md").read_text()
