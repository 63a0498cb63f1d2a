"""Parallel multiple-choice tasks as data: a YAML config names the data files, languages, prompt templates,
choice format and answer field; `load_items` turns it into items. A new benchmark needs a YAML file, no code.

Two data layouts: one file whose rows hold every language (SeaEval: `{"id", "English": {...}, "Chinese": {...}}`),
or one file per language (`data_files: {en: a.jsonl, zh: b.jsonl}`) joined on `id_field`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, Union

from crosstune.config import StrictModel, apply_overrides, read_yaml, validate
from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where

REPO_ROOT = Path(__file__).resolve().parents[3]
LETTERS = "ABCDEFGHIJ"


class GenerationConfig(StrictModel):
    max_new_tokens: int = 128
    stop: list[str] = []


class LoglikConfig(StrictModel):
    target: Literal["choice", "label", "text"] = "choice"  # "(A) Paris" | "(A)" | "Paris"
    delimiter: str = ""  # put between the prompt and each scored option


class TaskConfig(StrictModel):
    name: str
    data_files: Union[str, dict[str, str]]
    languages: dict[str, str]  # crosstune tag -> the row key (nested layout) or display name
    id_field: str = "id"
    fields: dict[str, str]  # template variable -> row field; needs `choices` and `answer`
    answer_format: Literal["choice", "index", "label"] = "choice"
    choices_joiner: str = "\n"
    default_prompt: str
    prompts: dict[str, Union[str, dict[str, str]]]  # a template, or {default: .., <tag>: ..} for native literals
    generation: GenerationConfig = GenerationConfig()
    loglik: LoglikConfig = LoglikConfig()
    source: str = ""  # where the config came from (set by load_task)


@dataclass(frozen=True)
class Item:
    id: str
    language: str
    prompt: str
    choices: tuple[str, ...]
    answer: str  # the gold choice string
    answer_index: int


def available_tasks() -> list[str]:
    return sorted(p.name[:-5] for p in (resources.files("crosstune") / "tasks").iterdir() if p.name.endswith(".yaml"))


def load_task(name_or_path: str, overrides: list[str] | None = None) -> TaskConfig:
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        shipped = resources.files("crosstune") / "tasks" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise CrosstuneError(f"task {name_or_path!r}: no such task file; shipped tasks: "
                                 f"{', '.join(available_tasks())} (or pass a path to a task .yaml)")
        path = Path(str(shipped))
    data = apply_overrides(read_yaml(path), overrides or [])
    cfg = validate(TaskConfig, data, str(path))
    for need in ("choices", "answer"):
        if need not in cfg.fields:
            raise CrosstuneError(f"{path}: field 'fields' needs a '{need}' entry")
    if cfg.default_prompt not in cfg.prompts:
        raise CrosstuneError(f"{path}: default_prompt {cfg.default_prompt!r} is not one of prompts: {list(cfg.prompts)}")
    return cfg.model_copy(update={"source": str(path)})


def resolve_data_path(raw: str, cfg: TaskConfig) -> Path:
    """Absolute paths as given; relative ones against the working directory, then the repository root."""
    p = Path(raw).expanduser()
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, REPO_ROOT / p]):
        if cand.exists():
            return cand
    raise CrosstuneError(f"{cfg.source} field 'data_files': {raw} not found (looked in the working directory and "
                         f"{REPO_ROOT}); pass --data {cfg.name}=PATH or override data_files")


def template_for(cfg: TaskConfig, prompt: str, lang: str) -> str:
    if prompt not in cfg.prompts:
        raise CrosstuneError(f"{cfg.source}: no prompt {prompt!r}; expected one of {list(cfg.prompts)}")
    t = cfg.prompts[prompt]
    return t if isinstance(t, str) else t.get(lang, t.get("default", ""))


def _iter_language_rows(cfg: TaskConfig, languages: list[str]):
    """Yield (id, {lang: (location, record)}) in file order."""
    if isinstance(cfg.data_files, str):
        path = resolve_data_path(cfg.data_files, cfg)
        for line, row in read_rows(path):
            if cfg.id_field not in row:
                raise CrosstuneError(f"{where(path, line, cfg.id_field)}: missing item id")
            recs = {}
            for lang in languages:
                key = cfg.languages[lang]
                if not isinstance(row.get(key), dict):
                    raise CrosstuneError(f"{where(path, line, key)}: missing language {lang} ({key}) in this item")
                recs[lang] = (where(path, line, key), row[key])
            yield str(row[cfg.id_field]), recs
        return
    per_lang: dict[str, dict[str, tuple[str, dict]]] = {}
    for lang in languages:
        if lang not in cfg.data_files:
            raise CrosstuneError(f"{cfg.source} field 'data_files': no file for language {lang}")
        path = resolve_data_path(cfg.data_files[lang], cfg)
        per_lang[lang] = {str(row.get(cfg.id_field)): (where(path, line), row) for line, row in read_rows(path)}
    first = per_lang[languages[0]]
    for lang in languages[1:]:
        missing = set(first) ^ set(per_lang[lang])
        if missing:
            raise CrosstuneError(f"{cfg.name}: ids differ between {languages[0]} and {lang} files, e.g. "
                                 f"{sorted(missing)[:3]}; parallel items must share ids")
    for item_id in first:
        yield item_id, {lang: per_lang[lang][item_id] for lang in languages}


def _make_item(cfg: TaskConfig, template: str, item_id: str, lang: str, loc: str, rec: dict) -> Item:
    values = {}
    for var, fld in cfg.fields.items():
        if fld not in rec:
            raise CrosstuneError(f"{loc}: missing field '{fld}'")
        values[var] = rec[fld]
    choices = values["choices"]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise CrosstuneError(f"{loc}: field '{cfg.fields['choices']}' must be a list of at least 2 strings")
    ans = values["answer"]
    if cfg.answer_format == "index" and isinstance(ans, int) and 0 <= ans < len(choices):
        idx = ans
    elif cfg.answer_format == "label" and isinstance(ans, str) and ans.strip("() ") in LETTERS[:len(choices)]:
        idx = LETTERS.index(ans.strip("() "))
    elif cfg.answer_format == "choice" and ans in choices:
        idx = choices.index(ans)
    else:
        raise CrosstuneError(f"{loc}: answer {ans!r} does not match the choices (answer_format={cfg.answer_format})")
    values["choices"] = cfg.choices_joiner.join(choices)
    try:
        prompt = template.format(**values)
    except (KeyError, IndexError) as e:
        raise CrosstuneError(f"{cfg.source}: prompt template uses {e}, which is not in 'fields'") from None
    return Item(item_id, lang, prompt, tuple(choices), choices[idx], idx)


def load_items(cfg: TaskConfig, languages: list[str] | None = None, prompt: str | None = None,
               limit: int | None = None) -> list[dict[str, Item]]:
    """One dict {lang: Item} per parallel item, in file order; every item has every requested language."""
    languages = languages or list(cfg.languages)
    unknown = [lang for lang in languages if lang not in cfg.languages]
    if unknown:
        raise CrosstuneError(f"task {cfg.name}: unknown languages {unknown}; it has {list(cfg.languages)}")
    prompt = prompt or cfg.default_prompt
    templates = {lang: template_for(cfg, prompt, lang) for lang in languages}
    items, seen = [], set()
    for item_id, recs in _iter_language_rows(cfg, languages):
        if item_id in seen:
            raise CrosstuneError(f"{next(iter(recs.values()))[0]}: duplicate item id {item_id!r}")
        seen.add(item_id)
        items.append({lang: _make_item(cfg, templates[lang], item_id, lang, loc, rec)
                      for lang, (loc, rec) in recs.items()})
        if limit is not None and len(items) >= limit:
            break
    return items
