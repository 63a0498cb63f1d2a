"""Task YAMLs written by an independent user from docs/task_configs.md alone run end to end through the CLI.

The three files in tests/eval/independent_tasks/ (one per task kind) are run by `crosstune eval run` on a tiny random
model over the first items of the real shared data. The test reads the YAML the way a user would (its `name`, `kind`
and `languages`) and checks that the summary has the keys the docs promise, that the item counts and languages are
what the YAML implies, and that accuracy, Consistency_s and RankC in summary.json agree with the same quantities
recomputed from predictions.jsonl by the formulas written in the docs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_main, shared_path

TASKS = Path(__file__).parent / "independent_tasks"
LIMIT = 3


def _rankc_query(a: list[int], b: list[int]) -> float:
    """RankC of one query as docs/task_configs.md defines it: sum_j w_j * P@j, w_j = e^(N-j) / sum_k e^(N-k)."""
    n = len(a)
    w = [math.exp(n - j) for j in range(1, n + 1)]
    z = sum(w)
    return sum(w[j - 1] / z * len(set(a[:j]) & set(b[:j])) / j for j in range(1, n + 1))


@pytest.fixture(autouse=True)
def _own_call_cache(tmp_path, monkeypatch):
    """Model calls go to a cache of this test's own, so every run really scores and generates."""
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))


def _run(yaml_name: str, tiny_model_dir: Path, tmp_path: Path, capsys, *extra: str):
    spec = yaml.safe_load((TASKS / yaml_name).read_text(encoding="utf-8"))
    out = tmp_path / "out"
    code, captured = run_main(
        ["eval", "run", "--model", str(tiny_model_dir), "--tasks", str(TASKS / yaml_name),
         "--limit", str(LIMIT), "--data-root", str(shared_path()), "--threads", "1", "--n-boot", "20",
         "--out", str(out), *extra], capsys)
    assert code == 0, captured.err
    task_dir = out / spec["name"]
    summary = json.loads((task_dir / "summary.json").read_text(encoding="utf-8"))
    preds = [json.loads(line) for line in (task_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return spec, summary, preds


def _check_parallel(spec: dict, summary: dict, preds: list[dict], n_items: int) -> dict:
    """Languages, item counts and the cross-lingual metrics are what the YAML and the docs imply."""
    langs = list(spec["languages"])
    assert summary["languages"] == langs
    assert summary["n_items"] == n_items
    assert len(preds) == n_items * len(langs)
    by_id: dict = defaultdict(dict)
    for r in preds:
        by_id[r["id"]][r["language"]] = r
    assert len(by_id) == n_items and all(set(v) == set(langs) for v in by_id.values())
    for lang in langs:
        pl = summary["per_language"][lang]
        assert pl["n"] == n_items
        assert pl["accuracy"] == pytest.approx(sum(by_id[i][lang]["correct"] for i in by_id) / n_items)
    assert summary["accuracy"] == pytest.approx(sum(r["correct"] for r in preds) / len(preds))
    for s in range(2, len(langs) + 1):
        assert 0.0 <= summary[f"consistency_{s}"] <= 1.0 and 0.0 <= summary[f"ac3_{s}"] <= 1.0
    assert set(summary["agreement"]) == set(langs)
    return by_id


def test_multiple_choice_xquad_mc(tiny_model_dir, tmp_path, capsys):
    """kind multiple_choice (loglik): SQuAD JSON per language, options sliced from paragraph_answers, acc + acc_norm."""
    shared_path("xquad", "xquad.en.json")
    spec, summary, preds = _run("xquad_mc.yaml", tiny_model_dir, tmp_path, capsys)
    assert spec["kind"] == "multiple_choice" and summary["kind"] == "multiple_choice"
    # --limit takes the first items; the filter then skips the ones it rejects (none of the first 3 here)
    assert summary["skipped_by_filter"] == 0
    by_id = _check_parallel(spec, summary, preds, LIMIT)
    for lang in spec["languages"]:
        assert 0.0 <= summary["per_language"][lang]["acc_norm"] <= 1.0
    # the first three questions of the first paragraph: gold positions 0, 1, 2 of 4 options in every language
    for k, (item_id, rows) in enumerate(by_id.items()):
        for r in rows.values():
            assert r["gold_index"] == k and len(r["logprobs"]) == 4
    # consistency is computed on the chosen option index (docs: never on text), SeaEval's Consistency_s
    langs = list(spec["languages"])
    combos = list(itertools.combinations(langs, 3))
    con3 = sum(sum(len({by_id[i][lang]["pred_index"] for lang in c}) == 1 for i in by_id) / LIMIT
               for c in combos) / len(combos)
    assert summary["consistency_3"] == pytest.approx(con3)


def test_generation_flores_x2en(tiny_model_dir, tmp_path, capsys):
    """kind generation (extract: span): per-language JSONL joined on id, chat template, EM and F1 per language."""
    shared_path("flores200_dev_seaeval", "flores_ind2eng_test.jsonl")
    spec, summary, preds = _run("flores_x2en.yaml", tiny_model_dir, tmp_path, capsys, "--max-new-tokens", "8")
    assert spec["kind"] == "generation" and summary["kind"] == "generation"
    by_id = _check_parallel(spec, summary, preds, LIMIT)
    assert list(by_id) == ["test_1", "test_2", "test_3"]
    for lang in spec["languages"]:
        pl = summary["per_language"][lang]
        assert 0.0 <= pl["f1"] <= 1.0 and 0.0 <= pl["exact_match"] <= 1.0
    # the English reference is the same sentence in every source language (the files are parallel)
    for rows in by_id.values():
        assert len({r["gold"] for r in rows.values()}) == 1


def test_cloze_mgsm_cloze(tiny_model_dir, tmp_path, capsys):
    """kind cloze: headerless TSV per language joined on line number, candidates built by an expression, RankC."""
    shared_path("mgsm", "mgsm_en.tsv")
    spec, summary, preds = _run("mgsm_cloze.yaml", tiny_model_dir, tmp_path, capsys)
    assert spec["kind"] == "cloze" and summary["kind"] == "cloze"
    by_id = _check_parallel(spec, summary, preds, LIMIT)
    # MGSM's first three answers; the gold is among the candidates at the same position in every language
    assert [next(iter(rows.values()))["gold"] for rows in by_id.values()] == ["18", "3", "70000"]
    for rows in by_id.values():
        assert len({(r["gold_index"], len(r["ranking"])) for r in rows.values()}) == 1
        for r in rows.values():
            assert sorted(r["ranking"]) == list(range(len(r["ranking"])))
            assert r["correct"] == (r["ranking"][0] == r["gold_index"])
    # RankC recomputed from the rankings with the docs' formula, averaged over queries, then over language pairs
    pairs = list(itertools.combinations(spec["languages"], 2))
    per_pair = [sum(_rankc_query(by_id[i][a]["ranking"], by_id[i][b]["ranking"]) for i in by_id) / LIMIT
                for a, b in pairs]
    assert summary["rankc"] == pytest.approx(sum(per_pair) / len(per_pair), abs=1e-6)


@pytest.mark.parametrize("old, new, expected", [
    # a typo in a template field: file and line of the row, the config field, the missing name and the row's fields
    ("{{ L.question }} {{ question }}", "{{ L.question }} {{ questoin }}",
     ["mgsm_en.tsv:1", "prompts.answer_is", "'questoin'", "['answer', 'question']"]),
    # a candidate set that lost the gold answer
    ("[answer | string | replace(',', '') | int,\n", "[\n",
     ["mgsm_en.tsv:1", "cloze.candidates", "'18'"]),
])
def test_user_mistakes_are_one_clear_error(tiny_model_dir, tmp_path, capsys, old, new, expected):
    """The mistakes a user makes while writing mgsm_cloze.yaml give one `error:` line and exit status 2."""
    shared_path("mgsm", "mgsm_en.tsv")
    text = (TASKS / "mgsm_cloze.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "mgsm_cloze_bad.yaml"
    bad.write_text(text.replace(old, new), encoding="utf-8")
    code, captured = run_main(["eval", "run", "--model", str(tiny_model_dir), "--tasks", str(bad), "--limit", "2",
                               "--data-root", str(shared_path()), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in captured.err
    for part in expected:
        assert part in lines[0]
    assert not (tmp_path / "out" / "mgsm_cloze" / "summary.json").exists()
