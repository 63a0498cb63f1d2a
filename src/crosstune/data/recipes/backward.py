"""Backward-model rows (X-Instruction step 1, METHODS.md 3.1): text in language x -> the English instruction it
answers, in the paper's prompt, so `crosstune train` tunes a backward model on seed data.

From a parallel set (`instruction_from: english`): the response of item i in x, and the instruction (+ input) of
the English item i. From a cross-lingual set whose x rows already carry an English instruction (X-Instruction's
released pairs, `instruction_from: same`): both from the x row. Items whose instruction needs an input are skipped
by default (the backward model writes instructions only); `with_input: append` keeps them, input appended.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from crosstune.config import StrictModel
from crosstune.data.blocks import Row
from crosstune.data.formats import alpaca_user_text
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.common import Languages, Volume, draw_indices, make_row, resolve_volume
from crosstune.data.recipes.sources import Corpus
from crosstune.data.xinstruct.config import fill, load_prompt
from crosstune.languages import normalize


class BackwardParams(StrictModel):
    languages: Languages  # response languages x (the text the backward model reads)
    english: str = "en"
    instruction_from: Literal["english", "same"] = "english"
    per_language: Volume = "all"
    replace: bool = False
    prompt: str = "xinstruct_generate"  # packaged prompt name or file; {text} is the response in x
    with_input: Literal["skip", "append"] = "skip"
    max_response_chars: int = Field(2000, ge=1, le=10**8)  # longer responses are skipped (a backward prompt must fit the context)

    @field_validator("english")
    @classmethod
    def _en(cls, v: str) -> str:
        return normalize(v)


def _languages(p: BackwardParams) -> list[str]:
    return ([p.english] if p.instruction_from == "english" else []) + [x for x in p.languages if x != p.english]


def build_backward(p: BackwardParams, corpus: Corpus, rng: np.random.Generator, log: list[str]):
    template = load_prompt(p.prompt)
    src = p.english if p.instruction_from == "english" else None
    usable: dict[str, list[str]] = {}
    for x in p.languages:
        ids = list(corpus.parallel.items[x])
        if src:
            english = corpus.parallel.items[src]
            ids = [i for i in ids if i in english]
        keep = []
        for i in ids:
            instr, inp, _ = corpus.fields(src or x, i)
            out = corpus.fields(x, i)[2]
            if (inp.strip() and p.with_input == "skip") or not out.strip() or len(out) > p.max_response_chars:
                continue
            keep.append(i)
        usable[x] = keep
        log.append(f"backward: {x}: {len(keep):,} of {len(ids):,} items usable (with_input={p.with_input}, "
                   f"response <= {p.max_response_chars} chars)")
    quotas = {x: resolve_volume(p.per_language, len(ids), f"backward {x}", p.replace) for x, ids in usable.items()}

    def row(k: int, x: str, item: str) -> Row:
        instr, inp, _ = corpus.fields(src or x, item)
        text = corpus.fields(x, item)[2]
        english = alpaca_user_text(instr, inp)
        user = fill(template, text=text)
        return make_row(f"backward-{k}", recipe="backward", mode="backward", user=user, response=english,
                        instruction_language=x, response_language="en",
                        source_ids=[f"{x}:{item}"] + ([f"{src}:{item}"] if src else []),
                        checks=(("user", text, x), ("assistant", english, "en")))

    # A seeded sample per language; rows the filters drop are not refilled (the manifest counts them).
    picks = [(x, usable[x][int(j)]) for x in p.languages
             for j in draw_indices(rng, len(usable[x]), quotas[x], p.replace)] if usable else []
    return (row(k, x, i) for k, (x, i) in enumerate(picks))


BACKWARD = Recipe("backward", BackwardParams, _languages, build_backward)
