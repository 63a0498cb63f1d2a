"""Benchmarks added by a YAML file alone, one per kind (tests/eval/user_tasks/*.yaml, written from
docs/task_configs.md only, on real data from ../shared/data), run end to end on a tiny model through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_main, shared_path

USER = REPO / "tests" / "eval" / "user_tasks"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data_root():
    return shared_path()


@pytest.mark.parametrize("task,langs,extra", [
    ("xquad_pick_answer", "en,de,es", ("acc_norm",)),
    ("mmlu_letter", "en,zh,es", ("f1", "exact_match")),
    ("xquad_cloze", "en,es,vi", ("rankc", "rankc_pairs")),
])
def test_user_task_runs_end_to_end(task, langs, extra, data_root, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code, cap = run_main(["eval", "run", "--model", str(tiny_model_dir), "--tasks", str(USER / f"{task}.yaml"),
                          "--languages", langs, "--limit", "3", "--max-new-tokens", "4", "--n-boot", "20",
                          "--data-root", str(data_root), "--out", str(out)], capsys)
    assert code == 0, cap.err
    s = json.loads((out / task / "summary.json").read_text())
    assert s["n_items"] == 3 and s["languages"] == langs.split(",")
    assert set(s["per_language"]) == set(langs.split(",")) and 0 <= s["accuracy"] <= 1
    assert {"consistency_3", "ac3_3", "agreement", "consistent_correct_3"} <= set(s)
    assert set(extra) <= set(s)
    rows = [json.loads(x) for x in (out / task / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and all("key" in r and "correct" in r for r in rows)
    assert task in cap.out
