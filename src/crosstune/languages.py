"""One place that turns language codes and names into canonical tags, built on `langcodes`.

`zh`, `zho`, `zh-CN`, `zho_Hans` and `Chinese` all become `zh`; a script is kept only when it is not
the language's usual one (`zh-Hant`, `sr-Latn`). Regions are dropped: the toolkit works per language.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import langcodes
from pydantic import AfterValidator

from crosstune.errors import CrosstuneError


@dataclass(frozen=True)
class Language:
    tag: str  # canonical BCP-47 tag, e.g. "zh", "fil", "zh-Hant"
    name: str  # English name, e.g. "Chinese"
    native_name: str  # autonym, e.g. "中文"
    script: str  # ISO 15924, e.g. "Hans"

    def __str__(self) -> str:
        return self.tag


def _parse(code: str) -> langcodes.Language:
    text = code.strip().replace("_", "-")
    if not text:
        raise CrosstuneError("empty language code")
    if langcodes.tag_is_valid(text):
        return langcodes.Language.get(text)
    try:
        return langcodes.find(text)
    except LookupError:
        raise CrosstuneError(
            f"unknown language {code!r}: expected a code like 'zh', 'zho', 'zh-CN', 'zho_Hans' or a name like 'Chinese'"
        ) from None


@lru_cache(maxsize=4096)
def get_language(code: str) -> Language:
    """Normalize any code or English name to a `Language`; raise `CrosstuneError` when unknown."""
    parsed = langcodes.Language.get(langcodes.standardize_tag(_parse(code).to_tag(), macro=True))
    if not parsed.language or parsed.language in ("und", "zxx", "mul"):
        raise CrosstuneError(f"unknown language {code!r}: it names no single language")
    base = langcodes.Language.get(parsed.language)
    usual_script = base.maximize().script
    script = parsed.script or usual_script or "Zyyy"
    tag = parsed.language if script == usual_script else f"{parsed.language}-{script}"
    lang = langcodes.Language.get(tag)
    return Language(tag=tag, name=lang.display_name(), native_name=lang.autonym(), script=script)


def normalize(code: str) -> str:
    """Canonical tag for a code or name (`'zho_Hans'` -> `'zh'`)."""
    return get_language(code).tag


def language_tag(value: str) -> str:
    """`normalize` for config validators: an unknown language is a ValueError, so pydantic names the field."""
    try:
        return normalize(value)
    except CrosstuneError as e:
        raise ValueError(str(e)) from None


LanguageTag = Annotated[str, AfterValidator(language_tag)]  # a config field holding one language, normalized


@lru_cache(maxsize=4096)
def language_name(code: str, in_language: str = "en") -> str:
    """The language's name in `in_language` (English by default), as a prompt writes it mid-sentence."""
    name = langcodes.Language.get(normalize(code)).display_name(in_language)
    name = name.removeprefix("bahasa ")  # Indonesian names itself "bahasa Indonesia"; templates add "bahasa"
    return name[0].lower() + name[1:] if in_language == "vi" else name  # "bằng tiếng Anh", mid-sentence


def same_language(a: str, b: str) -> bool:
    return normalize(a) == normalize(b)
