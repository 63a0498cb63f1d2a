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


# ---- the new schema: layouts, literals, kinds, and errors that name file, line and field ---------------------

def _task(tmp_path, body: str, name: str = "t.yaml"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return load_task(str(p))


MC = ("name: mc\nkind: multiple_choice\nchoices: \"[a, b, c]\"\nanswer: gold\n"
      "default_prompt: p\nprompts: {p: \"{{ L.q }} {{ q }}\\n{% for c in choices %}{{ letters[loop.index0] }}. {{ c }}\\n{% endfor %}\"}\n"
      "literals: {en: {q: 'Q:'}, de: {q: 'F:'}}\n")


def _rows(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def test_long_layout_separate_choice_fields_letter_answers_and_scaffolding(tmp_path):
    _rows(tmp_path, "long.jsonl", [
        {"id": 1, "lang": "en", "q": "Sky?", "a": "blue", "b": "red", "c": "green", "gold": "A"},
        {"id": 1, "lang": "de", "q": "Himmel?", "a": "blau", "b": "rot", "c": "grün", "gold": "(A)"},
        {"id": 2, "lang": "de", "q": "Gras?", "a": "blau", "b": "rot", "c": "grün", "gold": 2},
        {"id": 2, "lang": "en", "q": "Grass?", "a": "blue", "b": "red", "c": "green", "gold": "green"}])
    cfg = _task(tmp_path, MC + "data_files: long.jsonl\nlayout: long\nlanguage_field: lang\nlanguages: {en: en, de: de}\n")
    items = load_items(cfg)
    assert [it["de"].answer_index for it in items] == [0, 2]
    assert items[0]["de"].prompt == "Q: Himmel?\nA. blau\nB. rot\nC. grün\n"  # English scaffolding by default
    native = load_items(cfg, scaffolding="native")
    assert native[0]["de"].prompt.startswith("F: Himmel?")
    assert native[1]["en"].continuations == ("blue", "red", "green")


def test_per_language_files_joined_on_line_number_tsv(tmp_path):
    (tmp_path / "d_en.tsv").write_text("2+2?\t4\n3+3?\t6\n", encoding="utf-8")
    (tmp_path / "d_zh.tsv").write_text("二加二？\t4\n三加三？\t6\n", encoding="utf-8")
    cfg = _task(tmp_path, "name: g\nkind: generation\nextract: number\ndata_files: d_{key}.tsv\ncolumns: [q, n]\n"
                          "id_field: null\nlanguages: {en: en, zh: zh}\nanswer: n\ndefault_prompt: p\nprompts: {p: '{{ q }}'}\n")
    items = load_items(cfg)
    assert [it["zh"].id for it in items] == ["1", "2"] and items[1]["zh"].prompt == "三加三？"
    assert items[1]["en"].answers == ("6",)


def _bad(tmp_path, rows, extra="", langs="{en: en, de: de}"):
    _rows(tmp_path, "d.jsonl", rows)
    return _task(tmp_path, MC + f"data_files: d.jsonl\nlayout: long\nlanguage_field: lang\nlanguages: {langs}\n" + extra)


def test_template_with_a_missing_field_names_file_line_field(tmp_path):
    cfg = _bad(tmp_path, [{"id": 1, "lang": "en", "a": "x", "b": "y", "c": "z", "gold": 0}], langs="{en: en}")
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 field 'prompts.p': the template refers to 'q'"):
        load_items(cfg)


def test_choices_not_a_list(tmp_path):
    _rows(tmp_path, "d.jsonl", [{"id": 1, "lang": "en", "q": "?", "opts": "a b c", "gold": 0}])
    cfg = _task(tmp_path, MC.replace('choices: "[a, b, c]"', "choices: opts") +
                "data_files: d.jsonl\nlayout: long\nlanguage_field: lang\nlanguages: {en: en}\n")
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 field 'choices': expected a list"):
        load_items(cfg)


def test_answer_outside_the_choices(tmp_path):
    cfg = _bad(tmp_path, [{"id": 1, "lang": "en", "q": "?", "a": "x", "b": "y", "c": "z", "gold": 7}], langs="{en: en}")
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 field 'answer': answer 7 does not match the choices"):
        load_items(cfg)


def test_languages_with_different_item_counts(tmp_path):
    (tmp_path / "d_en.tsv").write_text("a\t1\nb\t2\n", encoding="utf-8")
    (tmp_path / "d_de.tsv").write_text("a\t1\n", encoding="utf-8")
    cfg = _task(tmp_path, "name: g\nkind: generation\ndata_files: d_{key}.tsv\ncolumns: [q, n]\nid_field: null\n"
                          "languages: {en: en, de: de}\nanswer: n\ndefault_prompt: p\nprompts: {p: '{{ q }}'}\n")
    with pytest.raises(CrosstuneError, match=r"different item counts: en 2 \(.*d_en.tsv\), de 1 \(.*d_de.tsv\)"):
        load_items(cfg)


def test_candidate_set_without_the_gold(tmp_path):
    _rows(tmp_path, "d.jsonl", [{"id": 1, "lang": "en", "s": "Paris is in", "cands": ["Spain", "Italy"], "gold": "France"}])
    cfg = _task(tmp_path, "name: c\nkind: cloze\ndata_files: d.jsonl\nlayout: long\nlanguage_field: lang\n"
                          "languages: {en: en}\nanswer: gold\ncloze: {candidates: cands}\ndefault_prompt: p\n"
                          "prompts: {p: '{{ s }} '}\n")
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 field 'cloze.candidates': the gold answer 'France' is not in"):
        load_items(cfg)


def test_options_must_be_parallel(tmp_path):
    cfg = _bad(tmp_path, [{"id": 1, "lang": "en", "q": "?", "a": "x", "b": "y", "c": "z", "gold": 0},
                          {"id": 1, "lang": "de", "q": "?", "a": "x", "b": "y", "c": "z", "gold": 1}])
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 .*gold option indices differ between languages"):
        load_items(cfg)


def test_sandbox_blocks_python_internals(tmp_path):
    _rows(tmp_path, "d.jsonl", [{"id": 1, "lang": "en", "q": "?", "gold": "x"}])
    cfg = _task(tmp_path, "name: g\nkind: generation\ndata_files: d.jsonl\nlayout: long\nlanguage_field: lang\n"
                          "languages: {en: en}\nanswer: gold\ndefault_prompt: p\n"
                          "prompts: {p: \"{{ q.__class__.__mro__ }}\"}\n")
    with pytest.raises(CrosstuneError, match="field 'prompts.p'"):
        load_items(cfg)


def test_data_root_and_task_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    _rows(tmp_path / "sub", "d.jsonl", [{"id": 1, "lang": "en", "q": "?", "a": "x", "b": "y", "c": "z", "gold": 0}])
    body = MC + "data_files: sub/d.jsonl\nlayout: long\nlanguage_field: lang\nlanguages: {en: en}\n"
    elsewhere = tmp_path / "cfg"
    elsewhere.mkdir()
    cfg = _task(elsewhere, body)
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CROSSTUNE_DATA", raising=False)
    with pytest.raises(CrosstuneError, match="no data root is set"):
        load_items(cfg)
    assert len(load_items(cfg, data_root=tmp_path)) == 1
    monkeypatch.setenv("CROSSTUNE_DATA", str(tmp_path))
    assert len(load_items(cfg)) == 1


def test_shipped_tasks_load_with_every_language():
    shared_path("mgsm")
    mgsm = load_items(load_task("mgsm"), limit=3)
    assert len(mgsm[0]) == 11 and mgsm[2]["zh"].prompt.count("问题：") == 9  # 8 native exemplars + the question
    en = load_items(load_task("mgsm"), ["zh"], limit=1, scaffolding="english")[0]["zh"].prompt
    assert en.startswith("Question: Roger")  # English exemplars and words, Chinese question
    xq = load_items(load_task("xquad"), ["en", "zh", "es", "vi"], limit=2)
    assert xq[0]["vi"].answers and xq[0]["en"].id == xq[0]["vi"].id


def test_repeated_options_are_an_error(tmp_path):
    cfg = _bad(tmp_path, [{"id": 1, "lang": "en", "q": "?", "a": "x", "b": "y", "c": "x", "gold": 0}], langs="{en: en}")
    with pytest.raises(CrosstuneError, match=r"d.jsonl:1 field 'choices': 'x' is option 0 and option 2"):
        load_items(cfg)


def test_cloze_delimiter_goes_between_prompt_and_candidate(tmp_path):
    _rows(tmp_path, "d.jsonl", [{"id": 1, "lang": "en", "s": "Paris is in", "cands": ["France", "Spain"],
                                 "gold": "France"}])
    cfg = _task(tmp_path, "name: c\nkind: cloze\ndata_files: d.jsonl\nlayout: long\nlanguage_field: lang\n"
                          "languages: {en: en}\nanswer: gold\ncloze: {candidates: cands, delimiter: ' '}\n"
                          "default_prompt: p\nprompts: {p: '{{ s }}'}\n")
    (item,) = load_items(cfg)
    assert item["en"].continuations == (" France", " Spain") and item["en"].choices == ("France", "Spain")
