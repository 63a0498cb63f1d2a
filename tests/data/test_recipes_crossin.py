"""CrossIn modes on a synthetic parallel Alpaca en/zh and aligned vi (METHODS.md section 1.1); one integration
test on a slice of the real one."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crosstune.config import validate
from crosstune.data.recipes.crossin import CrossInParams, build
from crosstune.errors import CrosstuneError
from tests.data.recipe_slices import corpus, real_corpus, real_slices, slices  # noqa: F401  (fixtures)
from tests.data.synthetic import LOST_VI
from tests.data.recipe_slices import N_VI


def rows_of(params: dict, corpus, seed: int = 0):  # noqa: F811
    p = validate(CrossInParams, params, "recipe")
    return list(build(p, corpus, np.random.default_rng(seed), []))


def test_corpus_ids_are_alpaca_row_indices(corpus):  # noqa: F811
    # the aligner gave the Vietnamese rows the English row numbers, so item i is the same task everywhere
    shared = corpus.parallel.ids(["en", "zh", "vi"])
    assert len(shared) == N_VI and not set(map(str, LOST_VI)) & set(shared)
    assert corpus.fields("en", "8")[0] == "Give three tips about clean water."
    assert corpus.fields("zh", "8")[0] == "给出关于清洁的水的三个建议。"
    assert corpus.fields("vi", "8")[0] == "Hãy đưa ra ba lời khuyên về nước sạch."


@pytest.mark.integration
def test_real_corpus_ids_are_alpaca_row_indices(real_corpus):  # noqa: F811
    shared = real_corpus.parallel.ids(["en", "zh", "vi"])
    assert len(shared) >= 280
    assert real_corpus.fields("en", "0")[0] == "Give three tips for staying healthy."
    assert real_corpus.fields("zh", "0")[0] == "给出保持健康的三个建议。"
    assert "sức khỏe" in real_corpus.fields("vi", "0")[0]
    rows = rows_of({"languages": ["en", "zh", "vi"], "modes": {"en2x": 50, "x2en": 50, "translate": 50}}, real_corpus)
    assert Counter(r.example.meta["mode"] for r in rows) == {"en2x": 50, "x2en": 50, "translate": 50}


def test_en2x_rows_pair_english_instruction_with_target_output(corpus):  # noqa: F811
    rows = rows_of({"languages": ["en", "zh", "vi"], "modes": {"en2x": 200}}, corpus)
    assert len(rows) == 200
    targets = Counter(r.example.meta["response_language"] for r in rows)
    assert set(targets) == {"zh", "vi"} and min(targets.values()) > 60  # uniform over non-English
    for r in rows:
        meta, (user, bot) = r.example.meta, r.example.messages
        item = meta["source_ids"][0].split(":")[1]
        instr, inp, _ = corpus.fields("en", item)
        x = meta["response_language"]
        assert meta["instruction_language"] == "en" and user.language == "en" and bot.language == x
        assert user.content == f"{instr}\n\n{inp}\n[{x}]"  # tag appended to the input; empty input = tag
        assert bot.content == corpus.fields(x, item)[2]
        assert meta["source_ids"] == [f"en:{item}", f"{x}:{item}"]


def test_x2en_translate_and_base(corpus):  # noqa: F811
    rows = rows_of({"languages": ["en", "zh", "vi"], "modes": {"base": 20, "x2en": 50, "translate": 50}}, corpus)
    by_mode = Counter(r.example.meta["mode"] for r in rows)
    assert by_mode == {"base": 20, "x2en": 50, "translate": 50}
    for r in rows:
        meta, (user, bot) = r.example.meta, r.example.messages
        item = meta["source_ids"][0].split(":")[1]
        if meta["mode"] == "base":
            assert meta["instruction_language"] == meta["response_language"] == "en"
            assert bot.content == corpus.fields("en", item)[2]
        elif meta["mode"] == "x2en":
            assert meta["response_language"] == "en" and user.content.endswith("\n[en]")
            assert bot.content == corpus.fields("en", item)[2]
        else:
            x = meta["instruction_language"]
            assert user.content.startswith("Translate the following sentence into English.\n\n")
            if x == "zh":  # Alpaca on both sides: only the instruction is translated, as the builder
                assert bot.content == corpus.fields("en", item)[0]
            else:  # the vi copy folds the input into its prompt, so whole user texts pair up
                instr, inp, _ = corpus.fields("en", item)
                assert bot.content.startswith(instr)


def test_x2x_draws_languages_independently(corpus):  # noqa: F811
    rows = rows_of({"languages": ["en", "zh", "vi"], "modes": {"x2x": 300}, "marking": {"style": "none"}}, corpus)
    pairs = Counter((r.example.meta["instruction_language"], r.example.meta["response_language"]) for r in rows)
    assert len(pairs) == 9  # all 3x3 combinations, monolingual ones included
    rows = rows_of({"languages": ["en", "zh", "vi"], "modes": {"x2x": 300}, "x2x_same_language": False}, corpus)
    assert all(r.example.meta["instruction_language"] != r.example.meta["response_language"] for r in rows)
    # x2x draws its own items: its en->x rows are not copies of en2x rows from the same draws
    rows = rows_of({"languages": ["en", "zh"], "modes": {"en2x": 40, "x2x": 40}, "replace": False}, corpus)
    texts = Counter(tuple(m.content for m in r.example.messages) for r in rows)
    assert sum(c - 1 for c in texts.values()) <= 3  # a shared draw stream gave about 10


def test_directive_marking_is_localized(corpus):  # noqa: F811
    rows = rows_of({"languages": ["en", "zh"], "modes": {"x2en": 5, "en2x": 5},
                    "marking": {"style": "directive"}}, corpus)
    for r in rows:
        user = r.example.messages[0].content
        if r.example.meta["mode"] == "x2en":
            assert "请用英语回答。" in user
        else:
            assert "Answer in Chinese." in user
    english = rows_of({"languages": ["en", "zh"], "modes": {"x2en": 5},
                       "marking": {"style": "directive", "directive_language": "english"}}, corpus)
    assert all("Answer in English." in r.example.messages[0].content for r in english)


def test_same_seed_same_rows_and_modes_do_not_disturb_each_other(corpus):  # noqa: F811
    a = rows_of({"languages": ["en", "zh", "vi"], "modes": {"en2x": 40}}, corpus, seed=1)
    b = rows_of({"languages": ["en", "zh", "vi"], "modes": {"en2x": 40, "x2en": 100}}, corpus, seed=1)
    c = rows_of({"languages": ["en", "zh", "vi"], "modes": {"en2x": 40}}, corpus, seed=2)
    dump = lambda rs: [r.example.to_dict() for r in rs if r.example.meta["mode"] == "en2x"]  # noqa: E731
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_bad_params_are_clear_errors(corpus):  # noqa: F811
    with pytest.raises(CrosstuneError, match="unknown mode.*'en2fr'"):
        rows_of({"languages": ["en", "zh"], "modes": {"en2fr": 10}}, corpus)
    with pytest.raises(CrosstuneError, match="must include the English"):
        rows_of({"languages": ["zh", "vi"], "modes": {"en2x": 10}}, corpus)
    with pytest.raises(CrosstuneError, match="asks for 5,000 items but the corpus has .*replace: true"):
        rows_of({"languages": ["en", "zh"], "modes": {"en2x": 5000}, "replace": False}, corpus)
    assert len(rows_of({"languages": ["en", "zh"], "modes": {"en2x": 5000}, "replace": True}, corpus)) == 5000
    with pytest.raises(CrosstuneError, match="corpus has no es"):
        rows_of({"languages": ["en", "es"], "modes": {"en2x": 10}}, corpus)


def test_translate_direction_both(corpus):  # noqa: F811
    rows = rows_of({"languages": ["en", "zh"], "modes": {"translate": 60}, "translate_direction": "both"}, corpus)
    directions = Counter((r.example.meta["instruction_language"], r.example.meta["response_language"]) for r in rows)
    assert set(directions) == {("zh", "en"), ("en", "zh")}
    to_zh = next(r for r in rows if r.example.meta["response_language"] == "zh")
    assert to_zh.example.messages[0].content.startswith("Translate the following sentence into Chinese.\n\n")


@pytest.mark.parametrize("params", [
    {"modes": {"base": "all", "en2x": "all", "x2en": "all", "translate": "all"}},
    {"modes": {"base": 30, "en2x": 40, "x2en": 40, "x2x": 40, "translate": 60}, "translate_direction": "both",
     "base_languages": ["en", "zh"], "marking": {"tag": ' <{code}> "q"\\ \t'}},
    {"modes": {"en2x": 30, "x2en": 30, "translate": 30}, "marking": {"style": "directive"},
     "translate_instruction": 'Render "this" in {language}:\n'},
    {"modes": {"x2x": 30, "translate": 30}, "marking": {"style": "none"}, "translate_direction": "en2x"},
])
def test_prewritten_lines_are_the_generic_encoding(corpus, params):  # noqa: F811
    # rows that carry their output line (written from escaped corpus fields) give the generic encoder's bytes
    from crosstune.data.build_encode import encode_row
    from crosstune.data.io import dumps_row

    rows = rows_of({"languages": ["en", "zh", "vi"], **params}, corpus)
    lined = [r for r in rows if r.line is not None]
    assert len(lined) >= (len(rows) if params.get("marking", {}).get("style", "tag") == "tag" else 30)
    for r in rows:
        reference = (dumps_row({"id": r.example.id, "messages": [m.to_dict() for m in r.example.messages],
                                "meta": r.example.meta}) + "\n").encode("utf-8")
        assert encode_row(r.example) == reference
        if r.line is not None:  # a PairRow's example is parsed from its line: the line re-encodes to itself
            assert (r.line if isinstance(r.line, bytes) else r.line.encode("utf-8")) == reference
