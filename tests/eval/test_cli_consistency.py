"""`crosstune eval consistency`: the predictions interface later checks rely on, and user errors."""

import json

import pytest

from crosstune.cli import main
from tests.conftest import shared_path


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr()


@pytest.mark.integration
def test_predictions_file_to_summary_json(tmp_path, capsys):
    preds = shared_path("seaeval_model_predictions", "seaeval_v0.1_cross_predictions_p1.jsonl.gz")
    out = tmp_path / "scores.json"
    code, cap = run(["eval", "consistency", "--predictions", str(preds), "--task", "cross_mmlu", "--out", str(out),
                     "--n-boot", "20"], capsys)
    assert code in (0, None), cap.err
    data = json.loads(out.read_text())
    assert set(data) == {"flan_t5_small|zero_shot", "gemma_7b|five_shot", "gpt4_1106_preview|zero_shot",
                         "llama_2_7b_chat|zero_shot", "mistral_7b_instruct_v0_2|zero_shot", "random|zero_shot"}
    s = data["gemma_7b|five_shot"]
    assert {"overall_acc", "language_acc", "consistency_score_3", "consistency_score_7", "AC3_3", "AC3_7"} <= set(s)
    assert s["language_acc"].keys() == {"English", "Chinese", "Indonesian", "Spanish", "Vietnamese", "Malay", "Filipino"}
    items = (tmp_path / "scores.items.jsonl").read_text().splitlines()
    assert len(items) == 6 * 150 * 7 and "extraction" in json.loads(items[0])
    # same seed, same bytes
    run(["eval", "consistency", "--predictions", str(preds), "--task", "cross_mmlu", "--out", str(tmp_path / "b.json"),
         "--n-boot", "20"], capsys)
    assert (tmp_path / "b.json").read_bytes() == out.read_bytes()


def test_user_errors_exit_2(tmp_path, capsys):
    code, cap = run(["eval", "consistency", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "exactly one of --predictions" in cap.err
    code, cap = run(["eval", "consistency", "--model", "default", "--tasks", "cross_mmlu", "--mode", "fast",
                     "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--mode" in cap.err


@pytest.mark.integration
def test_a_bad_predictions_row_exits_2_naming_file_line_and_field(tmp_path, capsys):
    shared_path("seaeval_cross_mmlu")  # the task's items are read before its predictions are checked
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "test_1", "model": "m"}\n')
    code, cap = run(["eval", "consistency", "--predictions", str(bad), "--task", "cross_mmlu",
                     "--out", str(tmp_path / "o.json")], capsys)
    assert code == 2 and "bad.jsonl:1 field 'model_prediction'" in cap.err


@pytest.mark.integration
def test_default_model_both_modes_small(tmp_path, capsys, default_model_dir):
    shared_path("seaeval_cross_mmlu")
    out = tmp_path / "ev"
    code, cap = run(["eval", "consistency", "--model", str(default_model_dir), "--tasks", "cross_mmlu",
                     "--mode", "loglik,generate", "--limit", "1", "--languages", "en,zh,es", "--max-new-tokens", "8",
                     "--n-boot", "20", "--out", str(out)], capsys)
    assert code in (0, None), cap.err
    summary = json.loads((out / "summary.json").read_text())
    for mode in ("loglik", "generate"):
        s = summary["cross_mmlu"][mode]
        assert s["n_items"] == 1 and s["languages"] == ["en", "zh", "es"]
        assert {"overall_acc", "consistency_score_3", "AC3_3", "bootstrap_95", "position_bias"} <= set(s)
        assert (out / "cross_mmlu" / mode / "position_bias.png").exists()
    assert "cross_mmlu (loglik" in (out / "results.md").read_text()
