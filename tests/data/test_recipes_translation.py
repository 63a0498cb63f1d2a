"""Translation rows from FLORES (5-way), NTREX and Tatoeba pairs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.recipes.translation import TranslationParams, build_translation, load_sentences
from crosstune.errors import CrosstuneError
from tests.conftest import shared_path


def run(params):
    log: list[str] = []
    p = validate(TranslationParams, params, "recipe")
    corpora, _ = load_sentences(p, [])
    return list(build_translation(p, corpora, np.random.default_rng(0), log)), log


def flores(lang_file: str, field: str, lang: str) -> dict:
    return {"language": lang, "path": str(shared_path("flores200_dev_seaeval", lang_file)), "field": field}


def test_flores_multiway_to_and_from_english():
    corpus = {"name": "flores", "sides": [flores("flores_zho2eng_test.jsonl", "answer", "en"),
                                          flores("flores_zho2eng_test.jsonl", "context", "zh"),
                                          flores("flores_vie2eng_test.jsonl", "context", "vi")]}
    rows, log = run({"corpora": [corpus], "per_direction": 20})
    assert Counter((r.example.meta["instruction_language"], r.example.meta["response_language"]) for r in rows) \
        == {("zh", "en"): 20, ("vi", "en"): 20}
    r = rows[0].example
    assert r.messages[0].content.startswith("Translate the following sentence into English.\n\n")
    assert r.meta["mode"] == "translate" and r.meta["source_ids"][0].startswith("flores:zh:")
    rows, _ = run({"corpora": [corpus], "per_direction": 5, "directions": "all_pairs"})
    assert len(rows) == 6 * 5
    rows, _ = run({"corpora": [corpus], "per_direction": 5, "directions": [["en", "vi"]]})
    assert {r.example.messages[0].content.split("\n")[0] for r in rows} == {
        "Translate the following sentence into Vietnamese."}


def test_tatoeba_pair_and_errors():
    pair = {"name": "tatoeba_vie", "sides": [
        {"language": "en", "path": str(shared_path("tatoeba_laser", "tatoeba.vie-eng.eng"))},
        {"language": "vi", "path": str(shared_path("tatoeba_laser", "tatoeba.vie-eng.vie"))}]}
    rows, _ = run({"corpora": [pair], "per_direction": "all", "directions": "from_english"})
    assert len(rows) == 1000 and rows[0].example.meta["response_language"] == "vi"
    with pytest.raises(CrosstuneError, match="asks for 5,000 items"):
        run({"corpora": [pair], "per_direction": 5000})
    bad = {"name": "mixed", "sides": [pair["sides"][0], {"language": "zh", "path": str(
        shared_path("ntrex128", "newstest2019-ref.zho-CN.txt"))}]}
    with pytest.raises(CrosstuneError, match="not line-aligned"):
        run({"corpora": [bad]})
