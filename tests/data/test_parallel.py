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
    assert corpus.ids(["en", "zh"]) == ["0", "2"]


def test_require_names_missing_language():
    import pytest

    from crosstune.errors import CrosstuneError

    corpus = ParallelCorpus.from_examples({"en": [ex(0)]})
    with pytest.raises(CrosstuneError, match="no vi; it has en"):
        corpus.require(["en", "vi"])
