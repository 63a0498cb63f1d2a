"""Read a parallel benchmark's rows in any common shape and join them into items: {lang: (location, row)}.

Formats: anything `crosstune.data.io.read_rows` reads (JSONL, JSON, Parquet, HF folders), TSV/CSV (with a header,
or `columns` named in the task: a first row equal to them is skipped, and `skip_header: true` skips a first row of
other names), and SQuAD JSON (one row per question, with the paragraph's other answers). Any text format may be
gzipped (`.tsv.gz`, `.csv.gz`, `.json.gz`, `.jsonl.gz`). The column count of every TSV/CSV row is checked as it is
read, before the task's `filter` sees it.
Layouts: `nested` (one row holds every language under its key: SeaEval), `long` (one row per language, a
`language_field` says which), `per_language` (a file per language: `data_files` with `{key}`/`{lang}` in the
path, or a mapping lang -> path). Items are joined on `id_field`, or on the line number when `id_field` is null.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from contextlib import contextmanager
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from crosstune import paths
from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where

Located = tuple[str, dict]  # ("file:line", row)


def language_files(cfg, languages: list[str], root) -> dict[str, Path] | Path:
    """One path (nested/long layout) or {lang: path} (per-language layout), resolved against the data root."""
    files = cfg.data_files
    if isinstance(files, dict):
        missing = [lang for lang in languages if lang not in files]
        if missing:
            raise CrosstuneError(f"{cfg.source} field 'data_files': no file for languages {missing}")
        return {lang: _resolve(files[lang], cfg, root) for lang in languages}
    if "{key}" in files or "{lang}" in files:
        return {lang: _resolve(files.format(key=cfg.language_key(lang), lang=lang), cfg, root) for lang in languages}
    return _resolve(files, cfg, root)


def _resolve(raw: str, cfg, root, field: str = "data_files") -> Path:
    try:
        return paths.resolve(raw, root=root, config=cfg.source if not cfg.shipped else None,
                             what=f"task {cfg.name}: {field}")
    except CrosstuneError as e:
        hint = f"pass --data {cfg.name}=PATH" if field == "data_files" else "set --data-root or use an absolute path"
        raise CrosstuneError(f"{e}; or {hint}") from None


def read_any(path: Path, fmt: str, columns: list[str] | None, delimiter: str | None = None,
             skip_header: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line or row number, row) from one file in the given format (gzipped too)."""
    fmt = fmt if fmt != "auto" else _guess(path)
    if fmt == "squad":
        yield from _read_squad(path)
    elif fmt in ("tsv", "csv"):
        yield from _read_delimited(path, delimiter or ("\t" if fmt == "tsv" else ","), columns, skip_header)
    else:
        yield from read_rows(path)


@contextmanager
def _text(path: Path):
    """The file as UTF-8 text (`.gz` decompressed); bad bytes or a broken gzip are an error naming the file."""
    try:
        with (gzip.open(path, "rt", encoding="utf-8", newline="") if path.name.lower().endswith(".gz")
              else open(path, encoding="utf-8", newline="")) as f:
            yield f
    except UnicodeDecodeError as e:
        raise CrosstuneError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); re-encode the file as UTF-8"
                             + ("" if path.name.lower().endswith(".gz") else " (or gzip it as .gz)")) from None
    except (OSError, EOFError, zlib.error) as e:
        raise CrosstuneError(f"{path}: cannot read ({e}); is the file truncated or corrupt?") from None


def _guess(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return "tsv" if name.endswith(".tsv") else "csv" if name.endswith(".csv") else "rows"


def _read_delimited(path: Path, delimiter: str, columns: list[str] | None,
                    skip_header: bool = False) -> Iterator[tuple[int, dict]]:
    with _text(path) as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
        header, first = columns, columns is not None
        for line, cells in enumerate(reader, 1):
            if not cells or not any(c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if first:  # the first row of a file read with `columns`: its own header when it names them
                first = False
                if skip_header or [c.strip() for c in cells] == header:
                    continue
            if len(cells) != len(header):
                hint = ("; if this row is the file's header, set skip_header: true"
                        if columns is not None and line == _first_line(path) else "")
                raise CrosstuneError(f"{where(path, line)}: {len(cells)} columns, expected {len(header)} "
                                     f"({', '.join(header)}){hint}")
            yield line, dict(zip(header, cells))


def _first_line(path: Path) -> int:
    """The line number of the first non-blank line (where a header row would be)."""
    with _text(path) as f:
        for n, text in enumerate(f, 1):
            if text.strip():
                return n
    return 0


def _read_squad(path: Path) -> Iterator[tuple[int, dict]]:
    """SQuAD v1.1 JSON -> one row per question: id, title, context, question, answers (list of {text,
    answer_start}), answer_texts, paragraph_answers (the first answer of each question in the paragraph),
    paragraph_index, question_index (this question's position in paragraph_answers)."""
    try:
        with _text(path) as f:
            data = json.loads(f.read())
    except ValueError as e:
        raise CrosstuneError(f"{path}: not a SQuAD JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CrosstuneError(f"{path} field 'data': expected SQuAD JSON {{\"data\": [{{\"paragraphs\": ...}}]}}")
    n = 0
    for article in data["data"]:
        for p_index, para in enumerate(article.get("paragraphs", [])):
            qas = para.get("qas", [])
            siblings = [qa["answers"][0]["text"] if qa.get("answers") else "" for qa in qas]
            for q_index, qa in enumerate(qas):
                n += 1
                answers = qa.get("answers", [])
                yield n, {"id": qa.get("id"), "title": article.get("title", ""), "context": para.get("context", ""),
                          "question": qa.get("question", ""), "answers": answers,
                          "answer_texts": [a.get("text", "") for a in answers], "paragraph_answers": siblings,
                          "paragraph_index": p_index, "question_index": q_index}


def join_rows(cfg, languages: list[str], root=None) -> Iterator[tuple[str, dict[str, Located]]]:
    """Yield (item id, {lang: (location, row)}) in file order; every item has every requested language."""
    files = language_files(cfg, languages, root)
    if isinstance(files, dict):
        yield from _join_per_language(cfg, files, languages)
    elif cfg.layout == "long":
        yield from _join_long(cfg, files, languages)
    else:
        yield from _nested(cfg, files, languages)


def _item_id(cfg, path: Path, line: int, row: dict) -> str:
    if cfg.id_field is None:
        return str(line)
    if cfg.id_field not in row or row[cfg.id_field] in (None, ""):
        raise CrosstuneError(f"{where(path, line, cfg.id_field)}: missing item id (set id_field: null to join "
                             "languages on the line number)")
    return str(row[cfg.id_field])


def _nested(cfg, path: Path, languages: list[str]):
    keys = {cfg.language_key(lang) for lang in cfg.languages}
    for n, (line, row) in enumerate(read_any(path, cfg.format, cfg.columns, skip_header=cfg.skip_header), 1):
        item_id = _item_id(cfg, path, n if cfg.id_field is None else line, row)
        shared = {k: v for k, v in row.items() if k not in keys}
        recs = {}
        for lang in languages:
            key = cfg.language_key(lang)
            if not isinstance(row.get(key), dict):
                raise CrosstuneError(f"{where(path, line, key)}: missing language {lang} ({key}) in this item")
            recs[lang] = (where(path, line), {**shared, **row[key]})
        yield item_id, recs


def _join_long(cfg, path: Path, languages: list[str]):
    if not cfg.language_field:
        raise CrosstuneError(f"{cfg.source} field 'language_field': the long layout needs it (the column naming "
                             "each row's language)")
    by_key = {cfg.language_key(lang): lang for lang in languages}
    groups: dict[str, dict[str, Located]] = {}
    counts: dict[str, int] = defaultdict(int)
    for line, row in read_any(path, cfg.format, cfg.columns, skip_header=cfg.skip_header):
        if cfg.language_field not in row:
            raise CrosstuneError(f"{where(path, line, cfg.language_field)}: missing the row's language")
        lang = by_key.get(str(row[cfg.language_field]))
        if lang is None:
            continue  # a language the run did not ask for
        counts[lang] += 1
        item_id = _item_id(cfg, path, counts[lang] if cfg.id_field is None else line, row)
        if lang in groups.setdefault(item_id, {}):
            raise CrosstuneError(f"{where(path, line, cfg.id_field or 'line')}: duplicate item {item_id!r} in {lang}")
        groups[item_id][lang] = (where(path, line), row)
    _check_counts(cfg, {lang: (path, counts[lang]) for lang in languages})
    for item_id, recs in groups.items():
        missing = [lang for lang in languages if lang not in recs]
        if missing:
            raise CrosstuneError(f"{next(iter(recs.values()))[0]} field '{cfg.id_field}': item {item_id!r} has no "
                                 f"row in {missing}")
        yield item_id, {lang: recs[lang] for lang in languages}


def _join_per_language(cfg, files: dict[str, Path], languages: list[str]):
    per_lang: dict[str, dict[str, Located]] = {}
    for lang in languages:
        rows: dict[str, Located] = {}
        for n, (line, row) in enumerate(read_any(files[lang], cfg.format, cfg.columns, skip_header=cfg.skip_header), 1):
            item_id = _item_id(cfg, files[lang], n if cfg.id_field is None else line, row)
            if item_id in rows:
                raise CrosstuneError(f"{where(files[lang], line, cfg.id_field)}: duplicate item id {item_id!r}")
            rows[item_id] = (where(files[lang], line), row)
        per_lang[lang] = rows
    _check_counts(cfg, {lang: (files[lang], len(per_lang[lang])) for lang in languages})
    first = per_lang[languages[0]]
    for lang in languages[1:]:
        diff = sorted(set(first) ^ set(per_lang[lang]))
        if diff:
            raise CrosstuneError(f"{files[lang]} field '{cfg.id_field}': ids differ from {files[languages[0]]} "
                                 f"(e.g. {diff[:3]}); parallel items must share ids")
    for item_id in first:
        yield item_id, {lang: per_lang[lang][item_id] for lang in languages}


def _check_counts(cfg, counts: dict[str, tuple[Path, int]]) -> None:
    sizes = {n for _, n in counts.values()}
    if len(sizes) > 1:
        listing = ", ".join(f"{lang} {n} ({p})" for lang, (p, n) in counts.items())
        raise CrosstuneError(f"task {cfg.name}: languages have different item counts: {listing}; a parallel "
                             "benchmark needs the same items in every language")


def load_fewshot(cfg, root) -> dict:
    """The whole few-shot source: parsed JSON/YAML, or the list of rows of a row file."""
    path = _resolve(cfg.fewshot.file, cfg, root, "fewshot.file (one file for all languages)")
    if path.suffix in (".json",) and cfg.fewshot.format == "auto":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise CrosstuneError(f"{path}: malformed JSON ({e})") from None
    return [row for _, row in read_any(path, cfg.fewshot.format, None)]
