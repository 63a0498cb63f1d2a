"""Translation rows from FLORES-like multi-way sentences and Tatoeba-like pairs (synthetic, built in the test;
`tests/data/synthetic.py`), and one integration test on the real FLORES dev files."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.recipes.translation import TranslationParams, build_translation, load_sentences
from crosstune.errors import CrosstuneError
from crosstune.paths import Lookup
from tests.conftest import shared_path
from tests.data.synthetic import write_translation

N = 60


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_translation(tmp_path_factory.mktemp("translation"), N)


def run(params):
    log: list[str] = []
    p = validate(TranslationParams, params, "recipe")
    corpora, _ = load_sentences(p, Lookup())
    return list(build_translation(p, corpora, np.random.default_rng(0), log)), log


def three_way(files) -> dict:
    return {"name": "flores", "sides": [{"language": "en", "path": str(files["flores_zh"]), "field": "answer"},
                                        {"language": "zh", "path": str(files["flores_zh"]), "field": "context"},
                                        {"language": "vi", "path": str(files["flores_vi"]), "field": "context"}]}


def test_multiway_to_and_from_english(files):
    corpus = three_way(files)
    rows, log = run({"corpora": [corpus], "per_direction": 20})
    assert Counter((r.example.meta["instruction_language"], r.example.meta["response_language"]) for r in rows) \
        == {("zh", "en"): 20, ("vi", "en"): 20}
    r = rows[0].example
    assert r.messages[0].content.startswith("Translate the following sentence into English.\n\n")
    assert r.meta["mode"] == "translate" and r.meta["source_ids"][0].startswith("flores:zh:")
    i = int(r.meta["source_ids"][0].split(":")[2])  # line-aligned: the response is the same line's English
    assert r.messages[1].content == files["pair_en"].read_text(encoding="utf-8").splitlines()[i]
    rows, _ = run({"corpora": [corpus], "per_direction": 5, "directions": "all_pairs"})
    assert len(rows) == 6 * 5
    rows, _ = run({"corpora": [corpus], "per_direction": 5, "directions": [["en", "vi"]]})
    assert {r.example.messages[0].content.split("\n")[0] for r in rows} == {
        "Translate the following sentence into Vietnamese."}


def test_text_pair_and_errors(files):
    pair = {"name": "tatoeba_vie", "sides": [{"language": "en", "path": str(files["pair_en"])},
                                             {"language": "vi", "path": str(files["pair_vi"])}]}
    rows, _ = run({"corpora": [pair], "per_direction": "all", "directions": "from_english"})
    assert len(rows) == N and rows[0].example.meta["response_language"] == "vi"
    with pytest.raises(CrosstuneError, match="asks for 5,000 items"):
        run({"corpora": [pair], "per_direction": 5000})
    bad = {"name": "mixed", "sides": [pair["sides"][0], {"language": "zh", "path": str(files["other_zh"])}]}
    with pytest.raises(CrosstuneError, match="not line-aligned"):
        run({"corpora": [bad]})


def test_text_sides_keep_blank_lines_and_reject_bad_bytes(tmp_path):
    en, xx = tmp_path / "a.eng", tmp_path / "a.vie"
    en.write_bytes(b"\xef\xbb\xbfOne.\r\n\r\nThree.\n")  # BOM accepted, CRLF and a blank line kept as lines
    xx.write_text("Một.\n\nBa.\n", encoding="utf-8")
    side = lambda lang, p: {"language": lang, "path": str(p)}  # noqa: E731
    corpora, _ = load_sentences(validate(TranslationParams, {"corpora": [
        {"name": "t", "sides": [side("en", en), side("vi", xx)]}]}, "recipe"), Lookup())
    assert corpora["t"]["en"] == ["One.", "", "Three."]
    xx.write_bytes(b"M\xe9t.\n")
    with pytest.raises(CrosstuneError, match=r"a.vie:1: not UTF-8"):
        load_sentences(validate(TranslationParams, {"corpora": [
            {"name": "t", "sides": [side("en", en), side("vi", xx)]}]}, "recipe"), Lookup())


@pytest.mark.integration
def test_real_flores_multiway():
    def flores(name, field, lang):
        return {"language": lang, "path": str(shared_path("flores200_dev_seaeval", name)), "field": field}

    corpus = {"name": "flores", "sides": [flores("flores_zho2eng_test.jsonl", "answer", "en"),
                                          flores("flores_zho2eng_test.jsonl", "context", "zh"),
                                          flores("flores_vie2eng_test.jsonl", "context", "vi")]}
    rows, _ = run({"corpora": [corpus], "per_direction": 20})
    assert len(rows) == 40
