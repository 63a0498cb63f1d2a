"""Translation-task rows from multi-way parallel sentences (FLORES, NTREX, Tatoeba pairs).

Each corpus is a group of line-aligned sides; directions apply within a corpus, so pairwise sets such as
Tatoeba (whose English sides differ per pair) are simply one corpus per pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import field_validator

from crosstune.config import StrictModel
from crosstune.data.blocks import Row
from crosstune.data.formats import alpaca_user_text
from crosstune.data.io import read_lines, read_rows
from crosstune.data.recipes.base import Recipe
from crosstune.data.recipes.common import Volume, draw_indices, make_row, resolve_volume
from crosstune.errors import CrosstuneError, where
from crosstune.hashing import file_sha256
from crosstune.languages import LanguageTag, language_name, normalize
from crosstune.paths import Lookup


class Side(StrictModel):
    language: LanguageTag
    path: str
    field: str | None = None  # JSON/JSONL files: the text field (e.g. FLORES "context" / "answer")


class ParallelSet(StrictModel):
    name: str
    sides: list[Side]


class TranslationParams(StrictModel):
    corpora: list[ParallelSet]
    english: str = "en"
    directions: Literal["to_english", "from_english", "all_pairs"] | list[list[str]] = "to_english"
    per_direction: Volume = "all"
    instruction: str = "Translate the following sentence into {language}."
    replace: bool = False

    @field_validator("directions")
    @classmethod
    def _directions(cls, v):
        if isinstance(v, list):
            if any(len(d) != 2 for d in v):
                raise ValueError("each direction is a [source, target] pair")
            return [[normalize(a), normalize(b)] for a, b in v]
        return v


def read_sentences(side: Side, lookup: Lookup, field: str = "") -> tuple[list[str], dict]:
    path = lookup(side.path, field)
    info = {"path": side.path, "sha256": file_sha256(path)}
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".json", ".jsonl", ".parquet")):
        if not side.field:
            raise CrosstuneError(f"{side.path}: a JSON file; name the text field with `field:`")
        out = []
        for line, row in read_rows(path):
            if not isinstance(row.get(side.field), str):
                raise CrosstuneError(f"{where(side.path, line, side.field)}: expected a string")
            out.append(row[side.field])
        return out, info
    lines: list[str] = []
    for _, text in read_lines(path):  # as str.splitlines() on the whole file: \r\n, \u2028 etc. break lines too
        lines.extend(text.splitlines() or [""])
    return lines, info


def _directions(p: TranslationParams, langs: list[str]) -> list[tuple[str, str]]:
    en = normalize(p.english)
    if isinstance(p.directions, list):
        return [(a, b) for a, b in p.directions if a in langs and b in langs]
    if p.directions == "to_english":
        return [(x, en) for x in langs if x != en and en in langs]
    if p.directions == "from_english":
        return [(en, x) for x in langs if x != en and en in langs]
    return [(a, b) for a in langs for b in langs if a != b]


def corpus_paths(p: TranslationParams) -> list[tuple[str, str]]:
    """(field, raw path) of every side of every corpus: `recipe.corpora.N.sides.M.path`."""
    return [(f"recipe.corpora.{i}.sides.{j}.path", side.path) for i, c in enumerate(p.corpora)
            for j, side in enumerate(c.sides)]


def load_sentences(p: TranslationParams, lookup: Lookup) -> tuple[dict[str, dict[str, list[str]]], list[dict]]:
    """{corpus name: {language: lines}} and the input files' hashes; sides must be line-aligned."""
    corpora, inputs = {}, []
    for i, cset in enumerate(p.corpora):
        texts = {}
        for j, side in enumerate(cset.sides):
            texts[side.language], info = read_sentences(side, lookup, f"recipe.corpora.{i}.sides.{j}.path")
            inputs.append(info)
        sizes = {len(v) for v in texts.values()}
        if len(sizes) != 1:
            detail = ", ".join(f"{lang} {len(v)}" for lang, v in texts.items())
            raise CrosstuneError(f"corpus {cset.name!r}: sides are not line-aligned ({detail} lines)")
        corpora[cset.name] = texts
    return corpora, inputs


def build_translation(p: TranslationParams, corpora: dict[str, dict[str, list[str]]], rng: np.random.Generator,
                      log: list[str]) -> Iterator[Row]:
    plan = []
    for name, texts in corpora.items():
        n = len(next(iter(texts.values())))
        for src, tgt in _directions(p, list(texts)):
            m = resolve_volume(p.per_direction, n, f"translation {name} {src}->{tgt}", p.replace)
            plan.append((name, texts, src, tgt, draw_indices(rng, n, m, p.replace)))
            log.append(f"translation: {name} {src}->{tgt}: {m:,} of {n:,} sentences")
    if isinstance(p.directions, list) and not plan:
        raise CrosstuneError(f"translation: no corpus has both languages of any direction in {p.directions}")

    def rows() -> Iterator[Row]:
        k = 0
        for name, texts, src, tgt, picks in plan:
            instruction = p.instruction.format(language=language_name(tgt))
            for i in picks:
                i = int(i)
                s, t = texts[src][i], texts[tgt][i]
                yield make_row(f"translation-{k}", recipe="translation", mode="translate",
                               user=alpaca_user_text(instruction, s), response=t, instruction_language=src,
                               response_language=tgt, source_ids=[f"{name}:{src}:{i}", f"{name}:{tgt}:{i}"],
                               checks=(("user", s, src), ("assistant", t, tgt)))
                k += 1

    return rows()


def _languages(p: TranslationParams) -> list[str]:
    return sorted({s.language for c in p.corpora for s in c.sides})


TRANSLATION = Recipe("translation", TranslationParams, _languages, build_translation, load=load_sentences)
