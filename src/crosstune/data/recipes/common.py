"""Pieces every recipe shares: volumes, seeded draws, response-language marking, and row construction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BeforeValidator
from crosstune.config import StrictModel
from crosstune.data.blocks import Row
from crosstune.data.formats import alpaca_user_text
from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError
from crosstune.languages import language_name, language_tag, normalize

if TYPE_CHECKING:
    from crosstune.data.recipes.sources import Corpus

MAX_VOLUME = 10**8  # rows one recipe entry may ask for (with replace: true, beyond the corpus size)


def _volume(v):
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # 1e3 on the command line
    if v == "all" or (isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_VOLUME):
        return v
    raise ValueError(f"expected a number of items from 1 to {MAX_VOLUME:,} or 'all', got {v!r}")


Volume = Annotated[int | Literal["all"], BeforeValidator(_volume)]  # item count, or every item

# X-Instruction's directive, written in the instruction's language; {language} is the response language's name
# in that language (langcodes). Other languages fall back to English unless the config adds a template.
DIRECTIVES = {
    "en": "Answer in {language}.",
    "zh": "请用{language}回答。",
    "vi": "Hãy trả lời bằng {language}.",
    "es": "Responde en {language}.",
    "id": "Jawablah dalam bahasa {language}.",
    "ms": "Jawab dalam bahasa {language}.",
    "fil": "Sumagot sa wikang {language}.",
}


class Marking(StrictModel):
    """How a row asks for its response language: CrossIn's input tag, an X-Instruction directive, or nothing."""

    style: Literal["tag", "directive", "none"] = "tag"
    tag: str = "\n[{code}]"  # CrossIn: lowercase code in brackets appended to the input
    directive_language: Literal["instruction", "english"] = "instruction"  # "instruction" = localized
    directives: dict[str, str] = {}  # extra or replacement templates per instruction language

    def template(self, instruction_language: str) -> tuple[str, str]:
        lang = "en" if self.directive_language == "english" else instruction_language
        table = {**DIRECTIVES, **{normalize(k): v for k, v in self.directives.items()}}
        return (lang, table[lang]) if lang in table else ("en", table["en"])


def marked_user_text(instruction: str, inp: str, instruction_language: str, target: str, marking: Marking) -> str:
    """The user turn asking for a response in `target`. Tag: appended to the input, so an empty input becomes
    just the tag and the with-input layout is used (CrossIn's builder). Directive: appended to the
    instruction (X-Instruction)."""
    if marking.style == "tag":
        return f"{instruction}\n\n{inp}{marking.tag.format(code=target)}"
    if marking.style == "directive":
        lang, template = marking.template(instruction_language)
        directive = template.format(language=language_name(target, lang))
        return alpaca_user_text(f"{instruction} {directive}", inp)
    return alpaca_user_text(instruction, inp)


def languages_field(values: list[str]) -> list[str]:
    """Validator body: canonical tags, no repeats (a ValueError so pydantic names the field)."""
    out = [language_tag(v) for v in values]
    dups = sorted({x for x in out if out.count(x) > 1})
    if dups:
        raise ValueError(f"languages listed twice: {', '.join(dups)}")
    return out


Languages = Annotated[list[str], AfterValidator(languages_field)]  # canonical tags, no repeats
class SampledParams(StrictModel):
    """Mixin for recipes that sample items: `replace` allows volumes above the corpus size."""

    replace: bool = False


def resolve_volume(volume: Volume, available: int, what: str, replace: bool) -> int:
    if volume == "all":
        return available
    if volume <= 0:
        raise CrosstuneError(f"{what}: volume must be positive or 'all', got {volume}")
    if volume > available and not replace:
        raise CrosstuneError(f"{what}: asks for {volume:,} items but the corpus has {available:,}; lower it, "
                             "or set replace: true to sample with replacement")
    return volume


def draw_indices(rng: np.random.Generator, available: int, n: int, replace: bool) -> np.ndarray:
    """`n` item positions: uniform with replacement (CrossIn's builder) or a seeded permutation prefix."""
    if available == 0:
        raise CrosstuneError("the corpus has no items shared by the recipe's languages")
    if replace:
        return rng.integers(0, available, size=n)
    return rng.permutation(available)[:n]


def spread_evenly(total: int, languages: list[str], rng: np.random.Generator) -> dict[str, int]:
    """`total` split as evenly as possible; which languages get the remainder is drawn with the seed."""
    base, extra = divmod(total, len(languages))
    lucky = set(rng.permutation(len(languages))[:extra].tolist())
    return {lang: base + (i in lucky) for i, lang in enumerate(languages)}


def make_row(row_id: str, *, recipe: str, mode: str, user: str, response: str, instruction_language: str,
             response_language: str, source_ids: list[str], checks: tuple = ()) -> Row:
    meta = {"recipe": recipe, "mode": mode, "instruction_language": instruction_language,
            "response_language": response_language, "source_ids": source_ids}
    msgs = [Message("user", user, instruction_language), Message("assistant", response, response_language)]
    return Row(Example(id=row_id, messages=msgs, meta=meta), checks)


def mono_row(corpus: "Corpus", recipe: str, k: int, lang: str, item: str) -> Row:
    """One row in a single language: the item as its source has it."""
    instr, inp, out = corpus.fields(lang, item)
    user = alpaca_user_text(instr, inp)
    return make_row(f"{recipe}-{k}", recipe=recipe, mode="monolingual", user=user, response=out,
                    instruction_language=lang, response_language=lang, source_ids=[f"{lang}:{item}"],
                    checks=(("user", user, lang), ("assistant", out, lang)))
