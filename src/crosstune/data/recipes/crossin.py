"""CrossIn (Lin et al., 2024): cross-lingual rows over a row-aligned parallel corpus (METHODS.md section 1.1).

Each draw picks an item uniformly (with replacement, as the released `build_dataset_with_alignment.py`) and a
target language uniformly over the non-English languages; mode m uses the first N_m draws, so equal volumes give
the builder's "one row per mode per draw". `x2x` (archived collator) draws both languages independently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import field_validator, model_validator

from crosstune.data.blocks import Row
from crosstune.data.formats import alpaca_user_text
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.common import (Marking, Volume, draw_indices, language_name, languages_field,
                                           make_row, marked_user_text, resolve_volume)
from crosstune.data.recipes.sources import Corpus
from crosstune.config import StrictModel
from crosstune.languages import normalize

MODES = ("base", "en2x", "x2en", "x2x", "translate")


class CrossInParams(StrictModel):
    languages: list[str]
    english: str = "en"
    modes: dict[str, Volume]
    base_languages: list[str] = ["en"]  # the paper's Base is English-only (Platypus)
    replace: bool = True  # the released builder draws with replacement
    marking: Marking = Marking()
    x2x_same_language: bool = True  # archived collator: ~1/|L| of x2x rows are monolingual
    translate_direction: Literal["x2en", "en2x", "both"] = "x2en"
    translate_instruction: str = "Translate the following sentence into {language}."

    @field_validator("languages", "base_languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        return languages_field(v)

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: dict) -> dict:
        unknown = [m for m in v if m not in MODES]
        if unknown:
            raise ValueError(f"unknown mode(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(MODES)}")
        if not v:
            raise ValueError(f"no modes; expected some of {', '.join(MODES)}")
        return v

    @model_validator(mode="after")
    def _english(self) -> "CrossInParams":
        self.english = normalize(self.english)
        if self.english not in self.languages:
            raise ValueError(f"languages must include the English (pivot) language {self.english!r}")
        if len(self.languages) < 2:
            raise ValueError("languages needs at least one language besides English")
        stray = [x for x in self.base_languages if x not in self.languages]
        if stray:
            raise ValueError(f"base_languages {stray} are not in languages {self.languages}")
        return self


def _languages(p: CrossInParams) -> list[str]:
    return p.languages


def build(p: CrossInParams, corpus: Corpus, rng: np.random.Generator, log: list[str]) -> Iterator[Row]:
    corpus.parallel.require(p.languages)
    ids = corpus.parallel.ids(p.languages)
    n = len(ids)
    log.append(f"crossin: {n:,} items shared by {', '.join(p.languages)}")
    volumes = {m: resolve_volume(v, n, f"crossin mode {m}", p.replace) for m, v in p.modes.items()}
    draws = max([v for m, v in volumes.items() if not (m == "base" and p.modes[m] == "all")] or [0])
    xs = [x for x in p.languages if x != p.english]
    # One child stream per kind of draw: mode m takes the first N_m draws, so changing one mode's volume
    # or adding a mode leaves the other modes' rows as they were.
    r_items, r_targets, r_pairs, r_coin, r_base, r_x2x = rng.spawn(6)
    items = draw_indices(r_items, n, draws, p.replace) if draws else np.zeros(0, dtype=int)
    # x2x is not in the released builder: its own items, else its en->x and x->en rows would copy en2x/x2en's
    x2x_items = draw_indices(r_x2x, n, volumes.get("x2x", 0), p.replace)
    targets = r_targets.integers(0, len(xs), size=draws)
    pairs = r_pairs.integers(0, len(p.languages), size=(draws, 2))
    coin = r_coin.integers(0, 2, size=draws)
    base_langs = r_base.integers(0, len(p.base_languages), size=draws)
    ctx = _Ctx(p, corpus, ids, xs)

    def rows() -> Iterator[Row]:
        for mode in MODES:
            if mode not in volumes:
                continue
            if mode == "base" and p.modes["base"] == "all":  # every item of each base language, once
                yield from (ctx.base(item, lang, f"{lang}-{item}")
                            for lang in p.base_languages for item in corpus.parallel.items[lang])
                continue
            for k in range(volumes[mode]):
                i = int(items[k])
                if mode == "base":
                    yield ctx.base(ids[i], p.base_languages[base_langs[k]], k)
                elif mode == "en2x":
                    yield ctx.cross(mode, i, p.english, xs[targets[k]], k)
                elif mode == "x2en":
                    yield ctx.cross(mode, i, xs[targets[k]], p.english, k)
                elif mode == "x2x":
                    a, b = _x2x_pair(pairs[k], len(p.languages), p.x2x_same_language)
                    yield ctx.cross(mode, int(x2x_items[k]), p.languages[a], p.languages[b], k)
                else:
                    yield ctx.translate(i, xs[targets[k]], "en2x" if p.translate_direction == "en2x" or
                                        (p.translate_direction == "both" and coin[k]) else "x2en", k)

    return rows()


def _x2x_pair(pair: np.ndarray, n_langs: int, same_ok: bool) -> tuple[int, int]:
    a, b = int(pair[0]), int(pair[1])
    if not same_ok and a == b:  # shift deterministically to the next language instead of redrawing
        b = (b + 1) % n_langs
    return a, b


class _Ctx:
    def __init__(self, p: CrossInParams, corpus: Corpus, ids: list[str], xs: list[str]):
        self.p, self.corpus, self.ids, self.xs = p, corpus, ids, xs

    def _id(self, mode: str, k) -> str:
        return f"crossin-{mode}-{k}"

    def base(self, item: str, lang: str, k) -> Row:
        instr, inp, out = self.corpus.fields(lang, item)
        user = alpaca_user_text(instr, inp)
        return _structured(make_row(self._id("base", k), recipe="crossin", mode="base", user=user, response=out,
                                    instruction_language=lang, response_language=lang, source_ids=[f"{lang}:{item}"],
                                    checks=(("user", user, lang), ("assistant", out, lang))), instr, inp, "none", "")

    def cross(self, mode: str, i: int, src: str, tgt: str, k: int) -> Row:
        item = self.ids[i]
        instr, inp, _ = self.corpus.fields(src, item)
        out = self.corpus.fields(tgt, item)[2]
        user = marked_user_text(instr, inp, src, tgt, self.p.marking)
        row = make_row(self._id(mode, k), recipe="crossin", mode=mode, user=user, response=out,
                       instruction_language=src, response_language=tgt,
                       source_ids=[f"{src}:{item}", f"{tgt}:{item}"],
                       checks=(("user", alpaca_user_text(instr, inp), src), ("assistant", out, tgt)))
        return _marked(row, user, instr, inp, self.p.marking.style)

    def translate(self, i: int, x: str, direction: str, k: int) -> Row:
        """Instruction-translation row. With Alpaca on both sides only the instruction is translated (the
        builder); when either side folds the input into its prompt, the whole user text is."""
        item, en = self.ids[i], self.p.english
        src, tgt = (x, en) if direction == "x2en" else (en, x)
        src_text, tgt_text = (self._instruction(src, item), self._instruction(tgt, item))
        if not (self.corpus.split_fields.get(x) and self.corpus.split_fields.get(en)):
            src_text, tgt_text = self._user_text(src, item), self._user_text(tgt, item)
        instruction = self.p.translate_instruction.format(language=language_name(tgt))
        user = alpaca_user_text(instruction, src_text)
        row = make_row(self._id("translate", k), recipe="crossin", mode="translate", user=user, response=tgt_text,
                       instruction_language=src, response_language=tgt,
                       source_ids=[f"{src}:{item}", f"{tgt}:{item}"],
                       checks=(("user", src_text, src), ("assistant", tgt_text, tgt)))
        return _structured(row, instruction, src_text, "none", "")

    def _instruction(self, lang: str, item: str) -> str:
        return self.corpus.fields(lang, item)[0]

    def _user_text(self, lang: str, item: str) -> str:
        instr, inp, _ = self.corpus.fields(lang, item)
        return alpaca_user_text(instr, inp)


# meta fields for the named training templates (train owner): the row's structured instruction/input (with the
# tag or directive where CrossIn's builder puts it) and output, so `gemma`/`llama`/`alpaca` render exactly what
# CrossIn's released collator renders for the same row (crosstune.models.render).
def _structured(row: Row, instruction: str, inp: str, directive: str, marker: str) -> Row:
    ex = row.example
    ex.meta["fields"] = {"instruction": instruction, "input": inp, "output": ex.response.content}
    ex.meta["directive"], ex.meta["marker"] = directive, marker
    return row


def _marked(row: Row, user: str, instr: str, inp: str, style: str) -> Row:
    """Split the marked user text back into CrossIn's fields: a tag ends the input, a directive the instruction."""
    if style == "tag":
        return _structured(row, instr, user[len(instr) + 2:], "tag", user[len(instr) + 2 + len(inp):])
    if style == "directive":
        instruction = user[:len(user) - len(inp) - 2] if inp.strip() else user
        return _structured(row, instruction, inp, "answer_in", instruction[len(instr):])
    return _structured(row, instr, inp, "none", "")


RECIPE = Recipe("crossin", CrossInParams, _languages, build)
