"""`crosstune eval tasks | run | compare`: the interface later checks rely on, and user errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_main, shared_path


def test_eval_tasks_one_per_line(capsys):
    code, cap = run_main(["eval", "tasks"], capsys)
    assert code == 0
    lines = cap.out.strip().splitlines()
    by_name = {line.split()[0]: line.split() for line in lines}
    assert {"cross_mmlu", "cross_logiqa", "cross_xquad", "mgsm", "xquad"} <= set(by_name)
    assert by_name["mgsm"][1] == "generation/number" and by_name["cross_mmlu"][1] == "multiple_choice/loglik"
    assert by_name["xquad"][2].split(",")[:4] == ["en", "zh", "es", "vi"]


@pytest.mark.integration
def test_run_then_compare(tiny_model_dir, tmp_path, capsys):
    root = shared_path()
    common = ["eval", "run", "--tasks", "cross_mmlu,xquad", "--languages", "en,zh,es", "--limit", "3",
              "--max-new-tokens", "4", "--n-boot", "20", "--data-root", str(root)]
    code, cap = run_main([*common, "--model", str(tiny_model_dir), "--out", str(tmp_path / "a")], capsys)
    assert code == 0, cap.err
    s = json.loads((tmp_path / "a/cross_mmlu/summary.json").read_text())
    assert {"accuracy", "consistency_3", "ac3_3", "per_language", "agreement"} <= set(s)
    assert set(s["per_language"]["zh"]) >= {"accuracy", "acc_sum", "acc_norm"}  # both selections, always
    assert s["acc_sum"] == s["accuracy"]  # select: sum
    rows = [json.loads(x) for x in (tmp_path / "a/cross_mmlu/predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and all("Question" in r["prompt"] for r in rows)  # the text the model received
    x = json.loads((tmp_path / "a/xquad/summary.json").read_text())
    assert {"f1", "exact_match", "consistency_3"} <= set(x) and x["template"] == "chat"  # auto, resolved
    index = json.loads((tmp_path / "a/summary.json").read_text())
    assert set(index) == {"cross_mmlu", "xquad"}
    # the same model with the training (chat) template: a second run to compare against
    code, cap = run_main([*common, "--model", str(tiny_model_dir), "--template", "chat", "--out", str(tmp_path / "b")],
                         capsys)
    assert code == 0, cap.err
    assert json.loads((tmp_path / "b/cross_mmlu/run.json").read_text())["identity"]["template"] == "chat"
    code, cap = run_main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                          str(tmp_path / "cmp.json")], capsys)
    assert code == 0, cap.err
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    r = cmp["tasks"]["cross_mmlu"]["per_language"]["en"]
    assert r["n"] == 3 and 0 <= r["mcnemar_p"] <= 1 and "| cross_mmlu | en | 3 |" in cap.out
    assert r["ci95"][0] < r["ci95"][1] and "Newcombe" in cap.out  # an interval even when no pair differs
    # a rerun into the same folder with a different template is refused, naming what changed
    code, cap = run_main([*common, "--model", str(tiny_model_dir), "--template", "raw", "--out", str(tmp_path / "b")],
                         capsys)
    assert code == 2 and "identity.template: 'chat' -> 'raw'" in cap.err


def test_mcnemar_exact_values():
    from crosstune.eval.compare import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0


def test_user_errors_exit_2(tmp_path, capsys):
    code, cap = run_main(["eval", "run", "--model", "default", "--tasks", "nope", "--out", str(tmp_path)], capsys)
    assert code == 2 and "shipped tasks:" in cap.err
    code, cap = run_main(["eval", "compare", str(tmp_path / "x"), str(tmp_path / "y")], capsys)
    assert code == 2 and "no such run folder" in cap.err
