import pytest

from crosstune.errors import CrosstuneError
from crosstune.languages import get_language, normalize


@pytest.mark.parametrize("code", ["zh", "zho", "zh-CN", "zho_Hans", "Chinese", "chinese", "zh-Hans"])
def test_chinese_spellings_become_one_tag(code):
    assert normalize(code) == "zh"


@pytest.mark.parametrize("code,tag", [("Vietnamese", "vi"), ("vie", "vi"), ("tl", "fil"), ("Tagalog", "fil"),
                                      ("zsm", "ms"), ("ind", "id"), ("eng", "en"), ("en-US", "en"),
                                      ("arb", "ar"), ("zh-Hant", "zh-Hant"), ("sr-Latn", "sr-Latn")])
def test_normalize(code, tag):
    assert normalize(code) == tag


def test_language_has_names_and_script():
    zh = get_language("zho_Hans")
    assert (zh.tag, zh.name, zh.native_name, zh.script) == ("zh", "Chinese", "中文", "Hans")
    assert get_language("vi").native_name == "Tiếng Việt"


@pytest.mark.parametrize("bad", ["xx", "", "notalanguage123", "und"])
def test_unknown_language_is_a_clear_error(bad):
    with pytest.raises(CrosstuneError, match="language"):
        normalize(bad)


def test_language_name_is_one_function_for_every_caller():
    """Recipes' directives, X-Instruction prompts and judge prompts all name languages through it."""
    from crosstune.languages import get_language, language_name

    assert language_name("zho_Hans") == "Chinese" == get_language("zh").name
    assert language_name("vi", "zh") == "越南语"
    assert language_name("en", "vi") == "tiếng Anh"  # lower-cased: Vietnamese writes it mid-sentence
    assert language_name("id", "id") == "Indonesia"  # "bahasa" is the directive template's own word


def test_language_fields_normalize_and_name_the_field():
    """Every config field holding a language is `LanguageTag` (or `languages_field`): one validator."""
    from crosstune.config import validate
    from crosstune.data.recipes.baselines import MonolingualParams
    from crosstune.data.translate.config import SourceConfig

    assert validate(SourceConfig, {"path": "x", "language": "zho_Hans"}).language == "zh"
    assert validate(MonolingualParams, {"language": "Vietnamese", "total": 3}).language == "vi"
    with pytest.raises(CrosstuneError, match=r"^r.yaml: field 'language': unknown language 'not a language'"):
        validate(MonolingualParams, {"language": "not a language", "total": 3}, "r.yaml")
