"""Tasks as data: shipped SeaEval configs, a new benchmark from YAML alone, and clear errors on bad data."""

import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval.tasks import available_tasks, load_items, load_task
from tests.conftest import shared_path


def test_shipped_tasks_are_listed():
    assert {"cross_mmlu", "cross_logiqa", "cross_xquad"} <= set(available_tasks())


@pytest.mark.integration
def test_seaeval_tasks_load_parallel_items():
    shared_path("seaeval_cross_mmlu")
    for name, n, needle in [("cross_mmlu", 150, "Question:\n"), ("cross_logiqa", 176, "Content:\n")]:
        items = load_items(load_task(name))
        assert len(items) == n and all(len(it) == 7 for it in items)
        assert all(len({x.answer_index for x in it.values()}) == 1 for it in items)  # gold is parallel
        assert items[0]["zh"].prompt.startswith(needle) and items[0]["zh"].prompt.endswith("\n\nAnswer:\n")


def _write(tmp_path, rows_by_lang):
    files = {}
    for lang, rows in rows_by_lang.items():
        p = tmp_path / f"{lang}.jsonl"
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files[lang] = str(p)
    return files


def test_new_benchmark_needs_only_yaml(tmp_path):
    files = _write(tmp_path, {
        "en": [{"qid": 1, "q": "2+2?", "opts": ["3", "4"], "gold": 1}, {"qid": 2, "q": "Sky?", "opts": ["blue", "red"], "gold": 0}],
        "de": [{"qid": 2, "q": "Himmel?", "opts": ["blau", "rot"], "gold": 0}, {"qid": 1, "q": "2+2?", "opts": ["3", "4"], "gold": 1}]})
    cfg_path = tmp_path / "toy.yaml"
    cfg_path.write_text(
        "name: toy\n"
        f"data_files: {{en: {files['en']}, de: {files['de']}}}\n"
        "languages: {en: English, de: German}\nid_field: qid\n"
        "choices: opts\nanswer: gold\nanswer_format: index\n"
        "default_prompt: p\nprompts:\n"
        "  p: {default: \"Q: {{ q }}\\n{{ choices | join('\\n') }}\\nA:\", de: \"F: {{ q }}\\n{{ choices | join('\\n') }}\\nA:\"}\n",
        encoding="utf-8")
    items = load_items(load_task(str(cfg_path)))
    assert [it["en"].id for it in items] == ["1", "2"]
    assert items[1]["de"].prompt == "F: Himmel?\nblau\nrot\nA:" and items[1]["de"].answer == "blau"


def test_missing_language_names_file_and_line(tmp_path):
    p = tmp_path / "d.jsonl"
    good = {"English": {"question": "q", "choices": ["(A) x", "(B) y"], "answer": "(A) x"}}
    p.write_text(json.dumps({"id": "1", **good, "Chinese": good["English"]}) + "\n" + json.dumps({"id": "2", **good}) + "\n")
    cfg = load_task("cross_mmlu", [f"data_files={p}", "languages={en: English, zh: Chinese}"])
    with pytest.raises(CrosstuneError, match=r"d.jsonl:2 field 'Chinese'.*missing language zh"):
        load_items(cfg)


def test_answer_not_in_choices_is_an_error(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id": "1", "English": {"question": "q", "choices": ["(A) x", "(B) y"], "answer": "(C) z"}}) + "\n")
    cfg = load_task("cross_mmlu", [f"data_files={p}", "languages={en: English}"])
    with pytest.raises(CrosstuneError, match="d.jsonl:1.*does not match the choices"):
        load_items(cfg)


def test_unknown_task_and_missing_data_are_clear():
    with pytest.raises(CrosstuneError, match="shipped tasks: cross_logiqa"):
        load_task("nope")
    with pytest.raises(CrosstuneError, match="--data cross_xquad=PATH"):
        load_items(load_task("cross_xquad", ["data_files=/nonexistent/x.jsonl"]))
