from crosstune.data.parallel import ParallelCorpus
from crosstune.data.schema import Example, Message


def ex(i, q="q", a="a"):
    return Example(str(i), [Message("user", q), Message("assistant", a)])


def test_validation_reports_missing_duplicate_and_empty():
    corpus = ParallelCorpus.from_examples({
        "en": [ex(0), ex(1), ex(2)],
        "zh": [ex(0), ex(0), ex(2, a="  ")],
    })
    r = corpus.report
    assert r.missing == {"en": [], "zh": ["1"]}
    assert r.duplicates["zh"] == ["0"] and r.empty["zh"] == ["2"]
    assert not r.ok and "zh: 1 missing id(s): 1" in r.summary()
    assert list(corpus.ids(["en", "zh"])) == ["0", "2"]


def test_require_names_missing_language():
    import pytest

    from crosstune.errors import CrosstuneError

    corpus = ParallelCorpus.from_examples({"en": [ex(0)]})
    with pytest.raises(CrosstuneError, match="no vi; it has en"):
        corpus.require(["en", "vi"])


def test_spilled_corpus_reads_the_same_fields():
    """Past its character budget a language's texts move to a temporary file; lookups give the same fields."""
    exs = {"en": [ex(i, q=f"question {i} " * 3, a=f"answer {i}") for i in range(500)],
           "zh": [ex(i, q=f"问题 {i}", a=f"回答 {i}") for i in range(0, 500, 2)]}
    small = ParallelCorpus.from_examples(exs)
    spilled = ParallelCorpus.from_examples(exs, spill_chars=1000)
    assert small.stores["en"].in_memory and not spilled.stores["en"].in_memory
    assert list(spilled.ids(["en", "zh"])) == small.ids(["en", "zh"]) == [str(i) for i in range(0, 500, 2)]
    assert list(spilled.items["en"]) == list(small.items["en"])
    for i in ("0", "7", "498", "499"):
        assert spilled.fields("en", i) == small.fields("en", i) == (f"question {i} " * 3, "", f"answer {i}")
    assert spilled.position("zh", "7") is None and spilled.report.missing["zh"][:2] == ["1", "3"]
    spilled.close()
