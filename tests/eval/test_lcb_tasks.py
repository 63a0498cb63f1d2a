"""LCB as shipped tasks: `eval run --tasks lcb_monolingual` generates through the cached generation path with the
paper's decoding (or greedy), scores both protocols and writes LCB's table; a rerun makes no model calls."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import run_main

pytest.importorskip("jieba", reason="the 'lcb' extra (jieba, fugashi, unidic-lite)")

PROMPTS = {("aya", "zh"): ["中国最长的河是哪条？"],
           ("dolly", "fr"): ["Quelle est la capitale de la France ?"],
           ("native", "fr"): ["Donne-moi une recette de crêpes."],
           ("okapi", "fr"): ["Écris une phrase sur la mer.", "Décris ton plat préféré."],
           ("okapi", "zh"): ["写一句关于大海的话。", "描述你最喜欢的菜。"]}


@pytest.fixture()
def data_root(tmp_path):
    """A data root in LCB's layout: test_sets/monolingual/<source>/<lang>.csv and the English word list."""
    root = tmp_path / "data"
    for (source, lang), prompts in PROMPTS.items():
        path = root / "language_confusion" / "test_sets" / "monolingual" / source / f"{lang}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["prompt", "source", "language"])
            w.writerows([p, f"{source}_src", lang] for p in prompts)
    (root / "language_confusion" / "words").write_text("the\nmachine\nlearning\n", encoding="utf-8")
    return root


def test_lcb_task_generates_scores_both_protocols_and_resumes(tiny_model_dir, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["eval", "run", "--model", str(tiny_model_dir), "--tasks", "lcb_monolingual", "--languages", "fr,zh",
            "--limit", "1", "--max-new-tokens", "6", "--data-root", str(data_root), "--out", str(out),
            "--cache", str(tmp_path / "calls.sqlite")]
    code, cap = run_main(args, capsys)
    assert code == 0, cap.err
    task = out / "lcb_monolingual"
    with open(task / "completions.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    # in the task's source order (aya, dolly, native, okapi), ids = 0-based rows of each file
    assert [(r["id"], r["source"], r["language"], r["task"]) for r in rows] == [
        ("0", "aya_src", "zh", "monolingual"), ("0", "dolly_src", "fr", "monolingual"),
        ("0", "native_src", "fr", "monolingual"), ("0", "okapi_src", "fr", "monolingual"),
        ("0", "okapi_src", "zh", "monolingual")]
    s = json.loads((task / "lcb_summary.json").read_text())
    assert s["decoding"]["temperature"] == 0.3 and s["decoding"]["top_p"] == 0.75
    assert s["decoding"]["max_new_tokens"] == 6 and s["calls"] == 5
    ref = {(r["source"], r["language"]): r for r in s["lcb_reference"]}
    assert {("okapi_src", "fr"), ("dolly_src", "fr"), ("okapi_src", "zh"), ("all", "all")} <= set(ref)
    assert ref[("okapi_src", "fr")]["wpr"] is None and ref[("okapi_src", "zh")]["wpr"] is not None
    assert {(r["source"], r["language"]) for r in s["lcb_crosstune"]} == set(ref)
    table = (task / "table.md").read_text()
    assert "LCB reference protocol" in table and "Both protocols on the same completions" in table
    items = [json.loads(x) for x in (task / "reference" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 5 and all("skipped" in i for i in items)
    # the same run again: every completion from the call cache, the same table
    code, cap = run_main(args, capsys)
    assert code == 0, cap.err
    again = json.loads((task / "lcb_summary.json").read_text())
    assert again["calls"] == 0 and again["lcb_reference"] == s["lcb_reference"]


def test_lcb_greedy_and_bad_options(tiny_model_dir, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["eval", "run", "--model", str(tiny_model_dir), "--tasks", "lcb_monolingual", "--languages", "fr",
            "--limit", "1", "--max-new-tokens", "4", "--data-root", str(data_root), "--out", str(out),
            "--cache", str(tmp_path / "calls.sqlite")]
    code, cap = run_main(base + ["--decoding", "greedy"], capsys)
    assert code == 0, cap.err
    s = json.loads((out / "lcb_monolingual" / "lcb_summary.json").read_text())
    assert s["decoding"]["temperature"] == 0.0
    code, cap = run_main(base + ["--decoding", "nucleus"], capsys)
    assert code == 2 and "--decoding 'nucleus': LCB tasks take lcb (T 0.3, top-p 0.75) or greedy" in cap.err
    code, cap = run_main(base[:-4] + ["--data-root", str(tmp_path), "--out", str(out)], capsys)
    assert code == 2 and "task lcb_monolingual: data_files" in cap.err and "Traceback" not in cap.err


def test_lcb_suite_is_checked_when_built(data_root):
    """The suite object `crosstune run` builds from `kind: lcb` fails before any work."""
    from crosstune.errors import CrosstuneError
    from crosstune.experiments.lcb import LcbSuite

    with pytest.raises(CrosstuneError, match=r"tasks \['mgsm'\]: expected LCB tasks"):
        LcbSuite(tasks=["mgsm"], data_root=str(data_root))
    suite = LcbSuite(tasks=["lcb_monolingual"], languages=["fr"], limit=1, max_new_tokens=4,
                     data_root=str(data_root))
    assert len(suite.inputs()["prompts"]["lcb_monolingual"]) == 3  # fr: dolly, native, okapi (run() below)
    with pytest.raises(CrosstuneError, match="--decoding 'beam'"):
        LcbSuite(tasks=["lcb_monolingual"], decoding="beam", data_root=str(data_root))


def test_lcb_suite_in_crosstune_run(tiny_model_dir, data_root, tmp_path, monkeypatch, capsys):
    """`crosstune run` with LCB as a suite: its LPR/WPR of both protocols become results columns."""
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    exp = tmp_path / "exp.yaml"
    exp.write_text(json.dumps({"name": "lcb", "model": str(tiny_model_dir), "eval": {"lcb": {
        "kind": "lcb", "settings": {"tasks": ["lcb_monolingual"], "languages": ["zh"],
                                                            "limit": 1, "max_new_tokens": 4,
                                                            "data_root": str(data_root)}}}}), encoding="utf-8")
    code, cap = run_main(["run", str(exp), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, cap.err
    rows = [json.loads(x) for x in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert [r["arm"] for r in rows] == ["untuned"]
    assert {"lcb.lcb_monolingual.lpr", "lcb.lcb_monolingual.wpr", "lcb.lcb_monolingual.crosstune_lpr"} <= set(rows[0])
