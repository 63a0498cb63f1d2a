"""LCB's reference metric (`--protocol reference`): identical to the reference's decisions and table on the shipped
models' completions, its normalisation and tokenisation rules, the outputs CSV, and the missing-extra error."""

import csv
import gzip
import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval import lcb_reference as ref
from tests.conftest import run_main, shared_path

pytest.importorskip("jieba", reason="the 'lcb' extra (jieba, fugashi, unidic-lite)")
pytest.importorskip("fugashi", reason="the 'lcb' extra (jieba, fugashi, unidic-lite)")

FR = "La capitale de la France est Paris, une très belle ville avec beaucoup de musées."
ZH = "法国的首都是巴黎，这是一座拥有许多博物馆和公园的美丽城市。"
JA = "フランスの首都はパリで、たくさんの美術館と公園がある美しい街です。"
WORDS = "the\nmachine\nlearning\nParis\ncity\nmodel\n"


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    from crosstune.eval.fidelity import FastTextDetector

    words = tmp_path_factory.mktemp("lcb") / "words"
    words.write_text(WORDS, encoding="utf-8")
    return ref.ReferenceJudge(FastTextDetector().model, ref.english_words(words))


@pytest.mark.integration
@pytest.mark.parametrize("model", ["command-r-plus", "llama-2-instruct"])
def test_identical_to_the_reference_on_the_shipped_completions(model):
    """Every per-response decision equal (100%), every table cell (LPR, WPR, acc) equal to 1e-6, same rows."""
    from crosstune.eval.fidelity import FastTextDetector

    base = shared_path("language_confusion", "model_outputs")
    expected = json.loads(gzip.open(base / f"{model}.reference.json.gz").read())
    judge = ref.ReferenceJudge(FastTextDetector().model,
                               ref.english_words(shared_path("language_confusion", "words")))
    items, table = ref.score_outputs(ref.read_outputs(base / f"{model}.csv.gz"), judge)
    keys = ("task", "source", "language", "id", "skipped", "line_error", "word_error")
    assert len(items) == len(expected["items"])
    differ = [(a, b) for a, b in zip(items, expected["items"]) if any(a[k] != b[k] for k in keys)]
    assert not differ, differ[:3]
    assert [(r["task"], r["model"], r["source"], r["language"]) for r in table] == \
        [(r["task"], r["model"], r["source"], r["language"]) for r in expected["table"]]
    for mine, theirs in zip(table, expected["table"]):
        for k in ("lpr", "wpr", "acc"):
            assert (mine[k] is None) == (theirs[k] is None), (mine, theirs)
            assert mine[k] is None or abs(mine[k] - theirs[k]) <= 1e-6, (mine, theirs, k)


def test_normalisation_and_line_rules(judge):
    assert ref.normalize(f"  {FR}\nQ: and now English?\nmore") == FR.replace(",", "").replace(".", "")
    assert ref.normalize("مرحبا، كيف—حالك") == "مرحبا كيف حالك"
    # lines under 5 tokens are dropped; nothing left = skipped (counted nowhere)
    assert judge.check("Oui.\nMerci beaucoup !", "fr")["skipped"] is True
    c = judge.check(f"Bonjour\n{FR}", "fr")
    assert (c["skipped"], c["line_error"], c["word_error"], len(c["lines"])) == (False, False, False, 1)
    en = "The capital of France is Paris and it is a very nice city with museums."
    c = judge.check(f"{FR}\n{en}", "fr")
    assert c["line_error"] is True and c["word_error"] is None and c["acc"] == 0.5


def test_cjk_tokenisation_and_english_words(judge):
    assert len(ref.tokenize(ZH, "zh")) >= 5 and "".join(ref.tokenize(ZH, "zh")) == ZH  # jieba words
    assert len(ref.tokenize(JA, "ja")) >= 5 and "".join(ref.tokenize(JA, "ja")) == JA  # MeCab (unidic-lite)
    assert not judge.check(ZH, "zh")["word_error"]
    glued = "这是一个machine learning模型，它在很多任务上都表现得非常好。"
    c = judge.check(glued, "zh")
    assert c["line_error"] is False and c["word_error"] is True
    # capitalised tokens are not looked up in lower case ("Paris" is not in the lower-case list)
    assert not judge.check("巴黎 Paris 是法国的首都，也是一座非常美丽的城市。", "zh")["word_error"]


def test_table_averages_like_the_reference(judge):
    rows = [{"id": str(i), "model": "m", "completion": text, "task": "monolingual", "source": src, "language": lang}
            for i, (src, lang, text) in enumerate([
                ("okapi", "fr", FR), ("okapi", "fr", "The capital of France is Paris, a very beautiful city."),
                ("okapi", "zh", ZH), ("aya", "zh", ZH), ("aya", "zh", "短。")])]
    items, table = ref.score_outputs(rows, judge)
    assert [i["skipped"] for i in items] == [False, False, False, False, True]
    cell = {(r["source"], r["language"]): r for r in table}
    assert list(cell) == [("aya", "zh"), ("okapi", "fr"), ("okapi", "zh"), ("aya", "all"), ("okapi", "all"),
                          ("all", "zh"), ("all", "fr"), ("all", "all")]
    assert cell[("okapi", "fr")]["lpr"] == 0.5 and cell[("okapi", "fr")]["wpr"] is None
    assert cell[("aya", "zh")]["lpr"] == 1.0 and cell[("aya", "zh")]["wpr"] == 1.0
    assert cell[("okapi", "all")]["lpr"] == 0.75 and cell[("okapi", "all")]["wpr"] == 1.0
    assert cell[("all", "all")]["lpr"] == (1.0 + 0.5) / 2  # the mean of the per-language means


def test_cli_reads_lcb_csv_gz_and_generation_runs(tmp_path, capsys):
    words = tmp_path / "words"
    words.write_text(WORDS, encoding="utf-8")
    path = tmp_path / "outputs.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "model", "completion", "task", "source", "language"])
        w.writerow(["0", "m", FR, "crosslingual", "okapi", "fr"])
        w.writerow(["1", "m", "这是一个machine learning模型，它在很多任务上都表现得非常好。", "crosslingual", "okapi", "zh"])
    code, cap = run_main(["eval", "fidelity", str(path), "--protocol", "reference", "--words", str(words),
                          "--out", str(tmp_path / "ref")], capsys)
    assert code == 0, cap.err
    summary = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert summary["protocol"] == "reference"
    cell = {(r["source"], r["language"]): r for r in summary["lcb"]}
    assert cell[("okapi", "zh")]["wpr"] == 0.0 and cell[("okapi", "fr")]["wpr"] is None
    items = [json.loads(x) for x in (tmp_path / "ref" / "items.jsonl").read_text().splitlines()]
    assert [(i["id"], i["line_error"], i["word_error"]) for i in items] == [("0", False, False), ("1", False, True)]
    assert "| okapi |" in (tmp_path / "ref" / "results.md").read_text()
    # the crosstune protocol reads the same CSV and reports the same layout beside its own table
    code, cap = run_main(["eval", "fidelity", str(path), "--out", str(tmp_path / "ct")], capsys)
    assert code == 0, cap.err
    ct = json.loads((tmp_path / "ct" / "summary.json").read_text())
    assert {(r["source"], r["language"]) for r in ct["lcb"]} == set(cell)
    assert ct["overall"]["pooled"] is True and ct["mean_over_languages"]["languages"] == 2


def test_bad_input_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model,completion\n0,m,hello\n", encoding="utf-8")
    code, cap = run_main(["eval", "fidelity", str(bad), "--protocol", "reference", "--out", str(tmp_path / "o")],
                         capsys)
    assert code == 2 and "bad.csv line 1: missing column(s) task, source, language" in cap.err
    assert "Traceback" not in cap.err
    with pytest.raises(CrosstuneError, match="--protocol 'lcb': expected crosstune or reference"):
        from crosstune.eval.fidelity import run_fidelity

        run_fidelity(bad, tmp_path / "o", protocol="lcb")


def test_missing_extra_names_it(monkeypatch):
    import sys

    ref._jieba.cache_clear()
    ref.tokenize.cache_clear()
    monkeypatch.setitem(sys.modules, "jieba", None)  # as if the extra were not installed
    try:
        with pytest.raises(CrosstuneError, match=r"needs jieba \(Chinese words\), from the 'lcb' extra: "
                                                 r"pip install 'crosstune\[lcb\]'"):
            ref.tokenize("这是一个句子", "zh")
    finally:
        ref._jieba.cache_clear()
        ref.tokenize.cache_clear()
