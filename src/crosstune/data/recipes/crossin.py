"""CrossIn (Lin et al., 2024): cross-lingual rows over a row-aligned parallel corpus (METHODS.md section 1.1).

Each draw picks an item uniformly (with replacement, as the released `build_dataset_with_alignment.py`) and a
target language uniformly over the non-English languages; mode m uses the first N_m draws, so equal volumes give
the builder's "one row per mode per draw". `x2x` (archived collator) draws both languages independently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
from pydantic import field_validator, model_validator

from crosstune.data.blocks import PairRow, Row
from crosstune.data.build_encode import _STR, EscapedFields, escape_utf8, escaped_concat, escaped_user_text, pair_line
from crosstune.data.formats import alpaca_user_text
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.common import (Languages, Marking, Volume, draw_indices, make_row, marked_user_text,
                                           resolve_volume)
from crosstune.data.recipes.sources import Corpus
from crosstune.config import StrictModel
from crosstune.languages import language_name, normalize

MODES = ("base", "en2x", "x2en", "x2x", "translate")


class CrossInParams(StrictModel):
    languages: Languages
    english: str = "en"
    modes: dict[str, Volume]
    base_languages: Languages = ["en"]  # the paper's Base is English-only (Platypus)
    replace: bool = True  # the released builder draws with replacement
    marking: Marking = Marking()
    x2x_same_language: bool = True  # archived collator: ~1/|L| of x2x rows are monolingual
    translate_direction: Literal["x2en", "en2x", "both"] = "x2en"
    translate_instruction: str = "Translate the following sentence into {language}."

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
                for lang in p.base_languages:
                    yield from ctx.base_rows(lang, ((item, f"{lang}-{item}") for item in corpus.parallel.items[lang]))
                continue
            n_m = volumes[mode]
            drawn = items[:n_m].tolist()
            if mode == "base":
                langs = [p.base_languages[j] for j in base_langs[:n_m].tolist()]
                for k in range(n_m):
                    yield from ctx.base_rows(langs[k], ((ids[drawn[k]], k),))
            elif mode == "en2x":
                yield from ctx.cross_rows(mode, ((k, i, p.english, xs[t])
                                                 for k, (i, t) in enumerate(zip(drawn, targets[:n_m].tolist()))))
            elif mode == "x2en":
                yield from ctx.cross_rows(mode, ((k, i, xs[t], p.english)
                                                 for k, (i, t) in enumerate(zip(drawn, targets[:n_m].tolist()))))
            elif mode == "x2x":
                for k in range(n_m):
                    a, b = _x2x_pair(pairs[k], len(p.languages), p.x2x_same_language)
                    yield from ctx.cross_rows(mode, ((k, int(x2x_items[k]), p.languages[a], p.languages[b]),))
            else:
                for k in range(n_m):
                    yield ctx.translate(drawn[k], xs[targets[k]], "en2x" if p.translate_direction == "en2x" or
                                        (p.translate_direction == "both" and coin[k]) else "x2en", k)

    return rows()


def _x2x_pair(pair: np.ndarray, n_langs: int, same_ok: bool) -> tuple[int, int]:
    a, b = int(pair[0]), int(pair[1])
    if not same_ok and a == b:  # shift deterministically to the next language instead of redrawing
        b = (b + 1) % n_langs
    return a, b


class _Ctx:
    """Row construction. The tag, base and translate rows write their output line from JSON-escaped corpus
    fields, each escaped once (`build_encode.EscapedFields`): the CrossIn build makes ~200K rows from ~150K texts,
    and escaping every text of every row again was most of the write. They are `PairRow`s: the line plus the two
    contents, the row key and the texts to check, with no `Example`, `Message`s or meta dicts (a custom filter
    that asks for `row.example` gets it parsed from the line)."""

    def __init__(self, p: CrossInParams, corpus: Corpus, ids: list[str], xs: list[str]):
        self.p, self.corpus, self.ids, self.xs = p, corpus, ids, xs
        self.look = {lang: corpus.lookup(lang) for lang in corpus.languages}
        self.esc = EscapedFields()
        self._tables = {lang: self.esc.table(lang) for lang in corpus.languages}
        self.e = {lang: escape_utf8(lang) for lang in corpus.languages}
        split = corpus.split_fields
        self.split = {x: bool(split.get(x) and split.get(p.english)) for x in corpus.languages}
        self._instructions: dict[str, tuple[str, bytes]] = {}

    def base_rows(self, lang: str, items: Iterable[tuple[str, object]]) -> Iterator[Row]:
        """Base rows of `lang` for (item id, row key) pairs: the item as its source has it."""
        look, E, S = self.look[lang], escape_utf8, _STR  # S(x).encode() is E(x), inlined per row
        escaped, fill = self.esc.table(lang), self.esc.fill
        el = E(lang)
        key = ("base", lang, lang)
        for item, k in items:
            fields = look(item)
            out = fields[2]
            ei, einp, eo, user, e_user = escaped.get(item) or fill(lang, item, fields)
            rid = f"crossin-base-{k}"
            meta_json = b"".join((b'{"recipe": "crossin", "mode": "base", "instruction_language": ', el,
                                  b', "response_language": ', el, b', "source_ids": [',
                                  S(f"{lang}:{item}").encode(), b'], "fields": {"instruction": ', ei,
                                  b', "input": ', einp, b', "output": ', eo, b'}, "directive": "none", "marker": ""}'))
            yield PairRow(rid, user, out, key, (("user", user, lang), ("assistant", out, lang)),
                          pair_line(S(rid).encode(), e_user, el, eo, el, meta_json), e_user, eo)

    def cross_rows(self, mode: str, draws: Iterable[tuple[int, int, str, str]]) -> Iterator[Row]:
        """Rows of (row number, item position, instruction language, response language): the instruction and
        input of the first, the output of the second, and the response-language marking."""
        ids, look, marking, e, E, S = self.ids, self.look, self.p.marking, self.e, escape_utf8, _STR
        escaped, fill = self._tables, self.esc.fill
        tags = {lang: marking.tag.format(code=lang) for lang in self.p.languages}
        e_tags = {lang: E(tag) for lang, tag in tags.items()}
        e_mode = E(mode)
        tag_style = marking.style == "tag"
        for k, i, src, tgt in draws:
            item = ids[i]
            src_fields, tgt_fields = look[src](item), look[tgt](item)
            instr, inp, _ = src_fields
            out = tgt_fields[2]
            ei, einp, _, user_text, _ = escaped[src].get(item) or fill(src, item, src_fields)
            checks = (("user", user_text, src), ("assistant", out, tgt))
            rid, src_id, tgt_id = f"crossin-{mode}-{k}", f"{src}:{item}", f"{tgt}:{item}"
            if tag_style:  # the tag ends the input: fields (instr, inp + tag), marker = tag
                tag, e_tag = tags[tgt], e_tags[tgt]
                user = f"{instr}\n\n{inp}{tag}"
                eo = (escaped[tgt].get(item) or fill(tgt, item, tgt_fields))[2]
                e_input = escaped_concat(einp, e_tag)
                meta_json = b"".join((b'{"recipe": "crossin", "mode": ', e_mode, b', "instruction_language": ',
                                      e[src], b', "response_language": ', e[tgt], b', "source_ids": [',
                                      S(src_id).encode(), b", ", S(tgt_id).encode(), b'], "fields": {"instruction": ',
                                      ei, b', "input": ', e_input, b', "output": ', eo,
                                      b'}, "directive": "tag", "marker": ', e_tag, b"}"))
                e_user = b"".join((ei[:-1], b"\\n\\n", e_input[1:]))
                yield PairRow(rid, user, out, (mode, src, tgt), checks,
                              pair_line(S(rid).encode(), e_user, e[src], eo, e[tgt], meta_json), e_user, eo)
                continue
            user = marked_user_text(instr, inp, src, tgt, marking)
            row = make_row(rid, recipe="crossin", mode=mode, user=user, response=out, instruction_language=src,
                           response_language=tgt, source_ids=[src_id, tgt_id], checks=checks)
            yield _marked(row, user, instr, inp, marking.style)

    def _translate_instruction(self, tgt: str) -> tuple[str, bytes]:
        """The translate instruction into `tgt`, and escaped (once per language)."""
        got = self._instructions.get(tgt)
        if got is None:
            instruction = self.p.translate_instruction.format(language=language_name(tgt))
            got = self._instructions[tgt] = (instruction, escape_utf8(instruction))
        return got

    def translate(self, i: int, x: str, direction: str, k: int) -> Row:
        """Instruction-translation row. With Alpaca on both sides only the instruction is translated (the
        builder); when either side folds the input into its prompt, the whole user text is."""
        item, en, S = self.ids[i], self.p.english, _STR
        src, tgt = (x, en) if direction == "x2en" else (en, x)
        src_fields, tgt_fields = self.look[src](item), self.look[tgt](item)
        tables, fill = self._tables, self.esc.fill
        e_src = tables[src].get(item) or fill(src, item, src_fields)
        e_tgt = tables[tgt].get(item) or fill(tgt, item, tgt_fields)
        if self.split[x]:
            src_text, tgt_text, es, et = src_fields[0], tgt_fields[0], e_src[0], e_tgt[0]
        else:  # the Alpaca user texts
            src_text, tgt_text, es, et = e_src[3], e_tgt[3], e_src[4], e_tgt[4]
        instruction, e_instruction = self._translate_instruction(tgt)
        user = alpaca_user_text(instruction, src_text)
        e_user = escaped_user_text(e_instruction, es, src_text)
        rid = f"crossin-translate-{k}"
        meta_json = b"".join((b'{"recipe": "crossin", "mode": "translate", "instruction_language": ', self.e[src],
                              b', "response_language": ', self.e[tgt], b', "source_ids": [',
                              S(f"{src}:{item}").encode(), b", ", S(f"{tgt}:{item}").encode(),
                              b'], "fields": {"instruction": ', e_instruction, b', "input": ', es, b', "output": ', et,
                              b'}, "directive": "none", "marker": ""}'))
        return PairRow(rid, user, tgt_text, ("translate", src, tgt),
                       (("user", src_text, src), ("assistant", tgt_text, tgt)),
                       pair_line(S(rid).encode(), e_user, self.e[src], et, self.e[tgt], meta_json), e_user, et)


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
