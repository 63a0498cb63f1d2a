"""Response-language fidelity over generation rows: per-language rates, confusion, misses, files, bad input."""

import json

import pytest

from crosstune.errors import CrosstuneError
from crosstune.eval.fidelity import build_detector, check_rows, run_fidelity, summarize
from crosstune.report.fidelity import write_fidelity_report
from tests.conftest import shared_path

TEXT = {
    "es": "La capital de Francia es París, una ciudad muy bonita con muchos museos y parques.",
    "fr": "La capitale de la France est Paris, une très belle ville avec beaucoup de musées.",
    "ru": "Столица Франции — Париж, очень красивый город с множеством музеев и парков.",
    "zh": "法国的首都是巴黎，这是一座拥有许多博物馆和公园的美丽城市。",
    "hi": "फ्रांस की राजधानी पेरिस है, जो कई संग्रहालयों वाला एक बहुत सुंदर शहर है।",
    "en": "The capital of France is Paris, a very beautiful city with many museums and parks.",
}


def row(i, lang, response, expected=None, directive="none"):
    return {"id": f"q{i}", "sample": 0, "language": lang, "expected_language": expected or lang,
            "directive": directive, "prompt": "…", "response": response, "model": "m", "fingerprint": "f"}


def write(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    (path / "generations.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def det():
    return build_detector("fasttext")


def test_rates_confusion_and_misses(det):
    rows = ([row(i, "es", TEXT["es"]) for i in range(3)] + [row(3, "es", TEXT["en"]), row(4, "es", "")]
            + [row(i, "en", TEXT["ru"], expected="ru", directive="answer_in") for i in range(2)]
            + [row(2, "en", TEXT["en"], expected="ru", directive="answer_in")])
    s = summarize(check_rows(rows, det), "fasttext", n_boot=200)
    es, ru = s["per_language"]["es"], s["per_language"]["ru"]
    assert (es["n"], es["expected_rate"], es["lpr"]) == (5, 0.6, 0.6)
    assert es["wpr"] == 1.0 and es["lcpr"] == pytest.approx(0.75)
    assert s["confusion"]["es"] == {"es": 3, "en": 1, "unknown": 1}
    assert s["confusion"]["ru"] == {"ru": 2, "en": 1} and ru["expected_rate"] == pytest.approx(2 / 3, abs=1e-4)
    misses = {(m["id"], m["detected"], m["reason"]) for m in s["misses"]["es"]}
    assert misses == {("q3", "en", "wrong-language"), ("q4", "unknown", "empty")}
    assert s["misses"]["ru"][0]["snippet"].startswith("The capital of France")
    lo, hi = es["expected_rate_95"]
    assert 0 <= lo <= 0.6 <= hi <= 1
    assert s["directives"] == {"none": 5, "answer_in": 3} and s["overall"]["n"] == 8


def test_run_writes_items_summary_table_and_png(tmp_path):
    langs = ["es", "fr", "ru", "zh", "hi", "en"]
    rows = [row(k, lang, TEXT[lang]) for k, lang in enumerate(langs)] + [row(9, "fr", TEXT["es"])]
    run = write(tmp_path / "run", rows)
    s = run_fidelity(run, tmp_path / "out", lid="fasttext", n_boot=100)
    assert write_fidelity_report(tmp_path / "out", s) == ["results.md", "confusion.png"]  # the report reads it
    assert set(s["per_language"]) == set(langs)
    for lang in langs:
        assert set(s["per_language"][lang]) >= {"expected_rate", "lpr", "wpr", "lcpr", "n"}
    assert s["confusion"]["fr"] == {"fr": 1, "es": 1}
    items = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(items) == 7 and {"expected", "detected", "lines", "english_words", "reason"} <= set(items[0])
    png = (tmp_path / "out" / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    table = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| fr | 2 | 0.500" in table and "LCPR" in table
    # the same input gives the same bytes
    run_fidelity(run, tmp_path / "out2", lid="fasttext", n_boot=100)
    assert (tmp_path / "out" / "summary.json").read_bytes().replace(b"out/", b"") == \
        (tmp_path / "out2" / "summary.json").read_bytes().replace(b"out2/", b"")


@pytest.mark.parametrize("lid", ["pycld2"])  # lingua works the same way but loads 75 models (~1 min here)
def test_other_lid_backends(tmp_path, lid):
    rows = [row(0, "es", TEXT["es"]), row(1, "ru", TEXT["ru"]), row(2, "es", TEXT["en"])]
    from crosstune.eval.fidelity import check_supported

    det = build_detector(lid)
    check_supported(rows, det)
    s = summarize(check_rows(rows, det), lid, n_boot=50)
    assert s["confusion"] == {"es": {"es": 1, "en": 1}, "ru": {"ru": 1}}


def test_bad_input(tmp_path):
    with pytest.raises(CrosstuneError, match="no such file"):
        run_fidelity(tmp_path / "nothing", tmp_path / "out")
    (tmp_path / "x.jsonl").write_text('{"id": "1", "text": "hi"}\n')
    with pytest.raises(CrosstuneError, match=r"x.jsonl:1: not a generation row, missing"):
        run_fidelity(tmp_path / "x.jsonl", tmp_path / "out")
    run = write(tmp_path / "run", [row(0, "es", TEXT["es"]), row(1, "haw", "Aloha kākou, pehea ʻoe i kēia lā?")])
    with pytest.raises(CrosstuneError, match=r"LID backend fasttext cannot detect 'haw' \(1 rows.*--lid"):
        run_fidelity(run, tmp_path / "out")
    with pytest.raises(CrosstuneError, match="--lid 'langdetect'"):
        build_detector("langdetect")
    with pytest.raises(CrosstuneError, match="no such file"):
        build_detector(f"fasttext:{tmp_path}/missing.bin")


def test_human_translations_are_in_their_language():
    """Human-translated HPLT prompts as 'responses': the LID floor per language (Norwegian is the weak one)."""
    d = shared_path("hplt_oasst_multilingual_test")
    rows = []
    for lang in ("es", "ru", "zh", "hi", "bg"):
        lines = (d / f"test_{lang}.jsonl").read_text(encoding="utf-8").splitlines()[:20]
        rows += [row(i, lang, json.loads(x)["prompt"]) for i, x in enumerate(lines)]
    s = summarize(check_rows(rows, build_detector("fasttext")), "fasttext", n_boot=50)
    for lang, r in s["per_language"].items():
        assert r["expected_rate"] >= 0.9 and r["lpr"] >= 0.9, (lang, r)
