"""CrossIn (Lin et al., 2024): cross-lingual rows over a row-aligned parallel corpus (METHODS.md section 1.1).

Each draw picks an item uniformly (with replacement, as the released `build_dataset_with_alignment.py`) and a
target language uniformly over the non-English languages; mode m uses the first N_m draws, so equal volumes give
the builder's "one row per mode per draw". `x2x` (archived collator) draws both languages independently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Literal

import numpy as np
from pydantic import field_validator, model_validator

from crosstune.data.blocks import PairRow, Row
from crosstune.data.build_encode import _STR, EscapedFields, escape_utf8, escaped_user_text
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


CHUNK = 1024  # rows made per call: the build reads them through one C-level chain, not a generator per row


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

    def chunks() -> Iterator[list[Row]]:
        """Each mode's rows, `CHUNK` at a time, from per-row lists of (row key, item, languages)."""
        for mode in MODES:
            if mode not in volumes:
                continue
            if mode == "base" and p.modes["base"] == "all":  # every item of each base language, once
                for lang in p.base_languages:
                    it = iter(corpus.parallel.items[lang])
                    while part := list(islice(it, CHUNK)):
                        yield ctx.base_rows([lang] * len(part), part, [f"{lang}-{item}" for item in part])
                continue
            n_m = volumes[mode]
            drawn = items[:n_m].tolist()
            if mode == "base":
                langs = [p.base_languages[j] for j in base_langs[:n_m].tolist()]
                for a in range(0, n_m, CHUNK):
                    yield ctx.base_rows(langs[a:a + CHUNK], [ids[i] for i in drawn[a:a + CHUNK]],
                                        range(a, min(a + CHUNK, n_m)))
                continue
            if mode == "translate":
                en2x = [p.translate_direction == "en2x" or (p.translate_direction == "both" and bool(c))
                        for c in coin[:n_m].tolist()]
            if mode == "x2x":
                pair = [_x2x_pair(pairs[k], len(p.languages), p.x2x_same_language) for k in range(n_m)]
                drawn = x2x_items.tolist()
                srcs, tgts = [p.languages[a] for a, _ in pair], [p.languages[b] for _, b in pair]
            else:
                tx = [xs[t] for t in targets[:n_m].tolist()]
                srcs, tgts = ([p.english] * n_m, tx) if mode == "en2x" else (tx, [p.english] * n_m)
            for a in range(0, n_m, CHUNK):
                b = min(a + CHUNK, n_m)
                if mode == "translate":
                    yield ctx.translate_rows(range(a, b), drawn[a:b], tx[a:b], en2x[a:b])
                else:
                    yield ctx.cross_rows(mode, range(a, b), drawn[a:b], srcs[a:b], tgts[a:b])

    return chain.from_iterable(chunks())


def _x2x_pair(pair: np.ndarray, n_langs: int, same_ok: bool) -> tuple[int, int]:
    a, b = int(pair[0]), int(pair[1])
    if not same_ok and a == b:  # shift deterministically to the next language instead of redrawing
        b = (b + 1) % n_langs
    return a, b


_USER = b', "messages": [{"role": "user", "content": '


class _Ctx:
    """Row construction. The tag, base and translate rows write their output line from JSON-escaped corpus
    fields, each escaped once (`build_encode.EscapedFields`): the CrossIn build makes ~200K rows from ~150K texts,
    and escaping every text of every row again was most of the write. They are `PairRow`s: the line plus the two
    contents, the row key and the texts to check, with no `Example`, `Message`s or meta dicts (a custom filter
    that asks for `row.example` gets it parsed from the line).

    Rows are made a list at a time in one loop per mode; a line is one `b"".join` of the item's escaped pieces
    and constant pieces per (mode, instruction language, response language), built once (`_pieces`)."""

    def __init__(self, p: CrossInParams, corpus: Corpus, ids: list[str], xs: list[str]):
        self.p, self.corpus, self.ids, self.xs = p, corpus, ids, xs
        self.look = {lang: corpus.lookup(lang) for lang in corpus.languages}
        self.esc = EscapedFields()
        self._tables = {lang: self.esc.table(lang) for lang in corpus.languages}
        self.e = {lang: escape_utf8(lang) for lang in corpus.languages}
        split = corpus.split_fields
        self.split = {x: bool(split.get(x) and split.get(p.english)) for x in corpus.languages}
        self._instructions: dict[str, tuple[str, bytes]] = {}
        self._consts: dict[str, dict[tuple[str, str], tuple]] = {}

    def _fill(self, lang: str, item: str) -> tuple:
        """The escaped entry of (lang, item), not in its table yet."""
        return self.esc.fill(lang, item, self.look[lang](item))

    def _pieces(self, mode: str) -> dict[tuple[str, str], tuple]:
        """Per (instruction language, response language): the row key, the line from the user content to the
        assistant content, and from there to the source ids."""
        got = self._consts.get(mode)
        if got is None:
            got = self._consts[mode] = {}
            for src in self.corpus.languages:
                for tgt in self.corpus.languages:
                    es, et = self.e[src], self.e[tgt]
                    got[src, tgt] = (
                        (mode, src, tgt), b', "language": ' + es + b'}, {"role": "assistant", "content": ',
                        b', "language": ' + et + b'}], "meta": {"recipe": "crossin", "mode": ' + escape_utf8(mode)
                        + b', "instruction_language": ' + es + b', "response_language": ' + et + b', "source_ids": [')
        return got

    def base_rows(self, langs: list[str], items: list[str], ks: Iterable) -> list[Row]:
        """Base rows (language, item id, row key): the item as its source has it."""
        tables, fill, pieces, S = self._tables, self._fill, self._pieces("base"), _STR
        out = []
        add = out.append
        for lang, item, k in zip(langs, items, ks):
            instr, inp, o, ei, einp, eo, user, e_user, e_sid = tables[lang].get(item) or fill(lang, item)
            key, mid, head = pieces[lang, lang]
            rid = f"crossin-base-{k}"
            add(PairRow(rid, user, o, key, (("user", user, lang), ("assistant", o, lang)),
                        b"".join((b'{"id": ', S(rid).encode(), _USER, e_user, mid, eo, head, e_sid,
                                  b'], "fields": {"instruction": ', ei, b', "input": ', einp, b', "output": ', eo,
                                  b'}, "directive": "none", "marker": ""}}\n')), e_user, eo))
        return out

    def cross_rows(self, mode: str, ks: Iterable[int], positions: list[int], srcs: list[str], tgts: list[str]
                   ) -> list[Row]:
        """Rows of (row number, item position, instruction language, response language): the instruction and
        input of the first, the output of the second, and the response-language marking."""
        ids = self.ids
        marking = self.p.marking
        if marking.style != "tag":
            return [self._marked_row(mode, k, ids[i], src, tgt, marking)
                    for k, i, src, tgt in zip(ks, positions, srcs, tgts)]
        tables, fill, pieces, S = self._tables, self._fill, self._pieces(mode), _STR
        tags = {lang: marking.tag.format(code=lang) for lang in self.p.languages}
        # a tag ends the input: fields (instr, inp + tag), marker = tag; escaped, it joins without its open quote
        tails = {lang: (escape_utf8(tag)[1:], b'}, "directive": "tag", "marker": ' + escape_utf8(tag) + b'}}\n')
                 for lang, tag in tags.items()}
        out = []
        add = out.append
        for k, i, src, tgt in zip(ks, positions, srcs, tgts):
            item = ids[i]
            instr, inp, _, ei, einp, _, user_text, e_user_text, s_sid = tables[src].get(item) or fill(src, item)
            o, eo, t_sid = (tables[tgt].get(item) or fill(tgt, item))[2::3]
            key, mid, head = pieces[src, tgt]
            e_tag, tail = tails[tgt]
            # escape(instr + "\n\n" + inp + tag): with an input, the Alpaca user text's escape is its start
            e_user = (e_user_text[:-1] if e_user_text is not ei else ei[:-1] + b"\\n\\n" + einp[1:-1]) + e_tag
            rid = f"crossin-{mode}-{k}"
            add(PairRow(rid, f"{instr}\n\n{inp}{tags[tgt]}", o, key,
                        (("user", user_text, src), ("assistant", o, tgt)),
                        b"".join((b'{"id": ', S(rid).encode(), _USER, e_user, mid, eo, head, s_sid, b", ", t_sid,
                                  b'], "fields": {"instruction": ', ei, b', "input": ', einp[:-1], e_tag,
                                  b', "output": ', eo, tail)), e_user, eo))
        return out

    def _marked_row(self, mode: str, k: int, item: str, src: str, tgt: str, marking) -> Row:
        """A directive- or un-marked row, built as an `Example`."""
        instr, inp, _ = self.look[src](item)
        out = self.look[tgt](item)[2]
        user_text = (self._tables[src].get(item) or self._fill(src, item))[6]
        user = marked_user_text(instr, inp, src, tgt, marking)
        row = make_row(f"crossin-{mode}-{k}", recipe="crossin", mode=mode, user=user, response=out,
                       instruction_language=src, response_language=tgt, source_ids=[f"{src}:{item}", f"{tgt}:{item}"],
                       checks=(("user", user_text, src), ("assistant", out, tgt)))
        return _marked(row, user, instr, inp, marking.style)

    def _translate_instruction(self, tgt: str) -> tuple[str, bytes]:
        """The translate instruction into `tgt`, and escaped (once per language)."""
        got = self._instructions.get(tgt)
        if got is None:
            instruction = self.p.translate_instruction.format(language=language_name(tgt))
            got = self._instructions[tgt] = (instruction, escape_utf8(instruction))
        return got

    def translate_rows(self, ks: Iterable[int], positions: list[int], xs: list[str], en2x: list[bool]) -> list[Row]:
        """Instruction-translation rows (row number, item position, the other language, direction). With Alpaca
        on both sides only the instruction is translated (the builder); when either side folds the input into its
        prompt, the whole user text is."""
        ids, en, tables, fill, pieces, split, S = self.ids, self.p.english, self._tables, self._fill, \
            self._pieces("translate"), self.split, _STR
        instructions = {lang: self._translate_instruction(lang) for lang in self.p.languages}
        out = []
        add = out.append
        for k, i, x, to_x in zip(ks, positions, xs, en2x):
            item = ids[i]
            src, tgt = (en, x) if to_x else (x, en)
            s = tables[src].get(item) or fill(src, item)
            t = tables[tgt].get(item) or fill(tgt, item)
            if split[x]:  # the instructions
                src_text, tgt_text, es, et = s[0], t[0], s[3], t[3]
            else:  # the Alpaca user texts
                src_text, tgt_text, es, et = s[6], t[6], s[7], t[7]
            instruction, e_instruction = instructions[tgt]
            key, mid, head = pieces[src, tgt]
            e_user = escaped_user_text(e_instruction, es, src_text)
            rid = f"crossin-translate-{k}"
            add(PairRow(rid, alpaca_user_text(instruction, src_text), tgt_text, key,
                        (("user", src_text, src), ("assistant", tgt_text, tgt)),
                        b"".join((b'{"id": ', S(rid).encode(), _USER, e_user, mid, et, head, s[8], b", ", t[8],
                                  b'], "fields": {"instruction": ', e_instruction, b', "input": ', es, b', "output": ',
                                  et, b'}, "directive": "none", "marker": ""}}\n')), e_user, et))
        return out


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
