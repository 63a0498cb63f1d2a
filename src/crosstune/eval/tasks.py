"""Parallel benchmarks as data: a task YAML names its files, languages, sandboxed Jinja templates for the prompt,
the choice list and the answer, and its kind; `load_items` turns it into items {lang: Item}. No code per benchmark.

Kinds: `multiple_choice` (option log-likelihood, or generation + SeaEval extraction), `generation` (free answer,
extracted as a number or a short span), `cloze` (rank a candidate set; RankC). See docs/task_configs.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field

from crosstune.config import StrictModel, Tokens, apply_overrides, read_yaml, validate
from crosstune.errors import CrosstuneError
from crosstune.eval import templating
from crosstune.eval.sources import join_rows, load_fewshot
from crosstune.eval.options import LETTERS
from crosstune.hashing import json_sha256


class GenerationConfig(StrictModel):
    max_new_tokens: Tokens = 128  # at least 1: an empty answer cannot be scored
    stop: list[str] = []


class LoglikConfig(StrictModel):
    continuation: str = "{{ choice }}"  # template per option: choice, index, letter and the row's fields
    delimiter: str = ""  # put between the prompt and each scored option
    select: Literal["sum", "norm"] = "sum"  # the prediction: summed log-prob, or lm-eval's acc_norm (per char)


class ClozeConfig(StrictModel):
    candidates: str  # expression -> list of candidate strings (same order in every language)
    delimiter: str = ""  # put between the prompt and each candidate (e.g. " ")
    suffix: str = ""  # template: the text after the blank
    # RankC: whole-sentence mean (sentence_mean_authors: their main.py's first-token rule; eval/scorers.py)
    rank_by: Literal["sentence_mean", "sentence_mean_authors", "sum", "norm"] = "sentence_mean"


class FewShotConfig(StrictModel):
    file: str
    format: str = "auto"
    records: str = "data"  # expression over {data, lang, key} -> list of exemplar records
    n: int = Field(8, ge=0, le=10_000)
    template: str  # per exemplar; the exemplar's fields, L, lang
    separator: str = "\n\n"  # between exemplars and before the question


class TaskConfig(StrictModel):
    name: str
    description: str = ""
    kind: Literal["multiple_choice", "generation", "cloze", "language_confusion"] = "multiple_choice"
    method: Literal["loglik", "generate"] = "loglik"  # multiple choice: how an option is chosen
    data_files: Union[str, dict[str, str]]
    format: str = "auto"  # auto | rows | tsv | csv | squad
    columns: Optional[list[str]] = None  # tsv/csv without a header row
    skip_header: bool = False  # tsv/csv with `columns`: the file's first row is a header of other names; skip it
    sources: dict[str, list[str]] = {}  # language_confusion (LCB, crosstune.eval.lcb): source -> its languages
    layout: Literal["auto", "nested", "long", "per_language"] = "auto"
    language_field: Optional[str] = None  # long layout
    id_field: Optional[str] = "id"  # null: join languages on the line number
    languages: dict[str, str]  # crosstune tag -> its key in the data (row key, file-name part, language value)
    filter: Optional[str] = None  # expression; rows where it is false in any language are skipped (counted)
    choices: Optional[str] = None  # expression -> list of option strings (multiple choice)
    answer: str = "answer"  # expression -> index, letter, choice text, number or answer text(s)
    answer_format: Literal["auto", "index", "letter", "choice", "number", "text"] = "auto"
    prompts: dict[str, Union[str, dict[str, str]]]  # template, or {default: .., <tag>: ..}
    default_prompt: str
    literals: dict[str, dict[str, str]] = {}  # {default|en|<tag>: {word: text}} -> `L.word` in templates
    scaffolding: Literal["native", "english"] = "english"
    template: str = "raw"  # the chat/named template the prompt is wrapped in (crosstune.models.render)
    extract: Optional[str] = None  # seaeval | crossin | package.module:function (choices); number | span (free)
    fewshot: Optional[FewShotConfig] = None
    generation: GenerationConfig = GenerationConfig()
    loglik: LoglikConfig = LoglikConfig()
    cloze: Optional[ClozeConfig] = None
    source: str = ""  # set by load_task
    shipped: bool = False

    def language_key(self, lang: str) -> str:
        return self.languages[lang]

    def identity(self) -> str:
        """A hash of everything that changes what the task asks (not where its files are)."""
        data = self.model_dump(exclude={"source", "shipped", "data_files"})
        return "sha256:" + json_sha256(data)[:16]


@dataclass(frozen=True)
class Item:
    id: str
    language: str
    prompt: str  # the user text (few-shot block included), before any chat/named template
    choices: tuple[str, ...] = ()  # options (multiple choice) or candidates (cloze)
    answer: str = ""  # the gold choice, or the first gold answer text
    answer_index: int = -1  # -1 for generation
    answers: tuple[str, ...] = ()  # every accepted answer (generation)
    continuations: tuple[str, ...] = ()  # what log-likelihood scores per choice (delimiter included)
    suffix: str = ""  # cloze: the text after the blank


class ItemList(list):
    """`load_items`' result: a list of {lang: Item}, plus how many rows the task's filter skipped."""

    skipped: int = 0


def tasks_dir():
    return resources.files("crosstune") / "tasks"


def available_tasks() -> list[str]:
    return sorted(p.name[:-5] for p in tasks_dir().iterdir() if p.name.endswith(".yaml"))


def load_task(name_or_path: str, overrides: list[str] | None = None) -> TaskConfig:
    path = Path(name_or_path).expanduser()
    shipped = False
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        candidate = tasks_dir() / f"{name_or_path}.yaml"
        if not candidate.is_file():
            raise CrosstuneError(f"task {name_or_path!r}: no such task file; shipped tasks: "
                                 f"{', '.join(available_tasks())} (or pass a path to a task .yaml)")
        path, shipped = Path(str(candidate)), True
    data = apply_overrides(read_yaml(path), overrides or [])
    cfg = validate(TaskConfig, data, str(path)).model_copy(update={"source": str(path), "shipped": shipped})
    _check(cfg)
    return cfg


def _check(cfg: TaskConfig) -> None:
    src = cfg.source
    if cfg.default_prompt not in cfg.prompts:
        raise CrosstuneError(f"{src} field 'default_prompt': {cfg.default_prompt!r} is not one of prompts "
                             f"{list(cfg.prompts)}")
    if cfg.kind == "multiple_choice" and not cfg.choices:
        raise CrosstuneError(f"{src} field 'choices': a multiple_choice task needs an expression for its options")
    if cfg.kind == "cloze" and cfg.cloze is None:
        raise CrosstuneError(f"{src} field 'cloze': a cloze task needs cloze.candidates")
    if cfg.kind == "generation" and cfg.extract not in (None, "number", "span"):
        raise CrosstuneError(f"{src} field 'extract': a generation task extracts 'number' or 'span'")
    if cfg.kind != "generation" and cfg.extract not in (None, "number", "span"):
        from crosstune.eval.extract import get_extractor

        get_extractor(cfg.extract, f"{src} field 'extract'")
    for name, tpl in cfg.prompts.items():
        for lang, text in (tpl.items() if isinstance(tpl, dict) else [("", tpl)]):
            templating.check(text, f"prompts.{name}" + (f".{lang}" if lang else ""), src)
    exprs = {"answer": cfg.answer, "choices": cfg.choices, "filter": cfg.filter,
             "cloze.candidates": cfg.cloze.candidates if cfg.cloze else None,
             "fewshot.records": cfg.fewshot.records if cfg.fewshot else None}
    for fld, expr in exprs.items():
        if expr:
            templating.check(expr, fld, src, expression=True)
    templating.check(cfg.loglik.continuation, "loglik.continuation", src)


def extraction(cfg: TaskConfig) -> str:
    if cfg.extract:
        return cfg.extract
    return "seaeval" if cfg.kind == "multiple_choice" else "span"


def template_for(cfg: TaskConfig, prompt: str, lang: str) -> str:
    if prompt not in cfg.prompts:
        raise CrosstuneError(f"{cfg.source}: no prompt {prompt!r}; expected one of {list(cfg.prompts)}")
    t = cfg.prompts[prompt]
    return t if isinstance(t, str) else t.get(lang, t.get("default", ""))


def literals_for(cfg: TaskConfig, lang: str, scaffolding: str) -> dict[str, str]:
    base = {**cfg.literals.get("default", {}), **cfg.literals.get("en", {})}
    return base if scaffolding == "english" else {**base, **cfg.literals.get(lang, {})}


@dataclass
class _Lang:
    """What every row of one language shares: its prompt template, literals and few-shot block."""

    lang: str
    template: str
    literals: dict
    fewshot: str = ""
    field_name: str = field(default="")
    scaffolding: str = "english"


def _fewshot_block(cfg: TaskConfig, source, lang: str, lits: dict, scaffolding: str) -> str:
    fs = cfg.fewshot
    ctx = {"data": source, "lang": lang, "key": cfg.language_key(lang), "L": lits, "scaffolding": scaffolding}
    records = templating.evaluate(fs.records, ctx, cfg.source, "fewshot.records")
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, dict) for r in records):
        raise CrosstuneError(f"{cfg.source} field 'fewshot.records': expected a list of records for {lang}, got "
                             f"{type(records).__name__}")
    shots = [templating.render(fs.template, {**r, "row": r, "L": lits, "lang": lang}, cfg.source, "fewshot.template")
             for r in list(records)[:fs.n]]
    return fs.separator.join(shots) + fs.separator if shots else ""


def load_items(cfg: TaskConfig, languages: list[str] | None = None, prompt: str | None = None,
               limit: int | None = None, *, scaffolding: str | None = None, data_root=None) -> ItemList:
    """One dict {lang: Item} per parallel item, in file order; every item has every requested language."""
    languages = languages or list(cfg.languages)
    unknown = [lang for lang in languages if lang not in cfg.languages]
    if unknown:
        raise CrosstuneError(f"task {cfg.name}: unknown languages {unknown}; it has {list(cfg.languages)}")
    prompt = prompt or cfg.default_prompt
    scaffolding = scaffolding or cfg.scaffolding
    shots = load_fewshot(cfg, data_root) if cfg.fewshot else None
    per_lang = {}
    for lang in languages:
        lits = literals_for(cfg, lang, scaffolding)
        block = _fewshot_block(cfg, shots, lang, lits, scaffolding) if cfg.fewshot else ""
        per_lang[lang] = _Lang(lang, template_for(cfg, prompt, lang), lits, block, f"prompts.{prompt}", scaffolding)
    items, seen = ItemList(), set()
    for item_id, recs in join_rows(cfg, languages, data_root):
        if item_id in seen:
            raise CrosstuneError(f"{next(iter(recs.values()))[0]} field '{cfg.id_field}': duplicate item id {item_id!r}")
        seen.add(item_id)
        if cfg.filter and not all(_keep(cfg, per_lang[lang], loc, row) for lang, (loc, row) in recs.items()):
            items.skipped += 1
            continue
        built = {lang: _make_item(cfg, per_lang[lang], item_id, loc, row) for lang, (loc, row) in recs.items()}
        _check_parallel(cfg, built, recs)
        items.append(built)
        if limit is not None and len(items) >= limit:
            break
    return items


def _context(cfg: TaskConfig, lang: _Lang, row: dict) -> dict:
    return {**row, "row": row, "lang": lang.lang, "key": cfg.language_key(lang.lang), "L": lang.literals,
            "letters": LETTERS, "scaffolding": lang.scaffolding}


def _keep(cfg: TaskConfig, lang: _Lang, loc: str, row: dict) -> bool:
    return bool(templating.evaluate(cfg.filter, _context(cfg, lang, row), loc, "filter"))


def _string_list(value, loc: str, fld: str, minimum: int = 2) -> list[str]:
    if not isinstance(value, (list, tuple)) or len(value) < minimum:
        raise CrosstuneError(f"{loc} field '{fld}': expected a list of at least {minimum} options, got "
                             f"{type(value).__name__}{' ' + repr(value)[:60] if not isinstance(value, (list, tuple)) else ''}")
    if not all(isinstance(c, (str, int, float)) for c in value):
        raise CrosstuneError(f"{loc} field '{fld}': every option must be a string")
    return [str(c) for c in value]


_LETTER = re.compile(r"^\(?\s*([A-Z])\s*[\).:]?$")


def choice_index(value, choices: list[str], fmt: str, loc: str, fld: str = "answer") -> int:
    """The gold option's index from an index, a letter ("B", "(B)"), or the choice text."""
    if fmt in ("auto", "index") and isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(choices):
            return value
    elif fmt == "index" and isinstance(value, str) and value.strip().isdigit() and int(value) < len(choices):
        return int(value)
    if fmt in ("auto", "choice") and isinstance(value, str) and value in choices:
        return choices.index(value)
    if fmt in ("auto", "letter") and isinstance(value, str):
        m = _LETTER.match(value.strip())
        if m and LETTERS.index(m.group(1)) < len(choices):
            return LETTERS.index(m.group(1))
    raise CrosstuneError(f"{loc} field '{fld}': answer {value!r} does not match the choices "
                         f"(answer_format={fmt}: {'an index, a letter or the choice text' if fmt == 'auto' else fmt}); "
                         f"choices: {[c[:40] for c in choices]}")


def _answers(value, loc: str) -> list[str]:
    values = value if isinstance(value, (list, tuple)) else [value]
    out = [str(v) for v in values if v is not None and str(v).strip() != ""]
    if not out:
        raise CrosstuneError(f"{loc} field 'answer': empty gold answer")
    return out


def _make_item(cfg: TaskConfig, lang: _Lang, item_id: str, loc: str, row: dict) -> Item:
    ctx = _context(cfg, lang, row)
    gold = templating.evaluate(cfg.answer, ctx, loc, "answer")
    if cfg.kind == "generation":
        if cfg.answer_format == "number" or cfg.extract == "number":
            from crosstune.eval.answers import parse_number

            if parse_number(str(gold)) is None:
                raise CrosstuneError(f"{loc} field 'answer': {gold!r} is not a number (extract: number)")
        answers = _answers(gold, loc)
        text = lang.fewshot + templating.render(lang.template, ctx, loc, lang.field_name)
        return Item(item_id, lang.lang, text, answer=answers[0], answers=tuple(answers))
    if cfg.kind == "cloze":
        choices = _string_list(templating.evaluate(cfg.cloze.candidates, ctx, loc, "cloze.candidates"), loc,
                               "cloze.candidates")
        golds = _answers(gold, loc)
        if golds[0] not in choices:
            raise CrosstuneError(f"{loc} field 'cloze.candidates': the gold answer {golds[0]!r} is not in the "
                                 f"candidate set {[c[:30] for c in choices]}")
        idx = choices.index(golds[0])
    else:
        choices = _string_list(templating.evaluate(cfg.choices, ctx, loc, "choices"), loc, "choices")
        idx = choice_index(gold, choices, cfg.answer_format, loc)
    _check_distinct(choices, loc, "cloze.candidates" if cfg.kind == "cloze" else "choices")
    ctx["choices"] = choices
    text = lang.fewshot + templating.render(lang.template, ctx, loc, lang.field_name)
    conts = tuple(cfg.loglik.delimiter + templating.render(cfg.loglik.continuation,
                                                           {**ctx, "choice": c, "index": i, "letter": LETTERS[i]},
                                                           loc, "loglik.continuation")
                  for i, c in enumerate(choices)) if cfg.kind == "multiple_choice" else \
        tuple(cfg.cloze.delimiter + c for c in choices)
    suffix = templating.render(cfg.cloze.suffix, ctx, loc, "cloze.suffix") if cfg.kind == "cloze" else ""
    return Item(item_id, lang.lang, text, tuple(choices), choices[idx], idx, (choices[idx],), conts, suffix)


def _check_distinct(choices: list[str], loc: str, field: str) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(choices):
        if c in seen:
            raise CrosstuneError(f"{loc} field '{field}': {c!r} is option {seen[c]} and option {i}; equal options get "
                                 "equal scores and the first always wins, so the second can never be chosen. Make the "
                                 "options distinct, or skip such items with `filter`")
        seen[c] = i


def _check_parallel(cfg: TaskConfig, built: dict[str, Item], recs: dict) -> None:
    if cfg.kind == "generation":
        return
    sizes = {it.language: len(it.choices) for it in built.values()}
    golds = {it.language: it.answer_index for it in built.values()}
    if len(set(sizes.values())) > 1 or len(set(golds.values())) > 1:
        first = next(iter(recs.values()))[0]
        what = "option counts" if len(set(sizes.values())) > 1 else "gold option indices"
        raise CrosstuneError(f"{first} field '{cfg.choices or 'cloze.candidates'}': {what} differ between languages "
                             f"({sizes if what == 'option counts' else golds}); cross-lingual metrics compare option "
                             "indices, so options must be parallel")
