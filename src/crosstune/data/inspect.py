"""Profile an instruction file: row count, detected language and length stats of each text field (streamed)."""

from __future__ import annotations

import random
from array import array
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from crosstune.data.formats import detect_format, row_to_example
from crosstune.data.io import read_rows
from crosstune.errors import CrosstuneError, where

TEXT_LISTS = {"messages": ("role", "content"), "conversations": ("from", "value")}
NOT_TEXT = {"id", "source", "uuid", "idx"}  # identifiers, not language


@dataclass
class FieldProfile:
    name: str
    count: int = 0
    empty: int = 0
    lengths: array = field(default_factory=lambda: array("q"))  # compact: one int64 per row
    detected: Counter = field(default_factory=Counter)  # on the sample only
    declared: Counter = field(default_factory=Counter)  # per-message "language" in crosstune rows

    def length_stats(self) -> dict[str, float]:
        xs = sorted(self.lengths) or [0]
        return {"mean": round(statistics.fmean(xs), 1), "median": xs[len(xs) // 2],
                "p95": xs[min(len(xs) - 1, int(0.95 * len(xs)))], "max": xs[-1]}

    def top_language(self) -> tuple[str, float]:
        known = Counter({k: v for k, v in self.detected.items() if k != "unknown"})
        total = sum(self.detected.values())
        if not known:
            return "unknown", 1.0 if total else 0.0
        lang, n = known.most_common(1)[0]
        return lang, n / total


def _text_fields(row: dict, parent: str = "") -> list[tuple[str, str, str | None]]:
    """(field name, text, declared language) for every text in a row; message lists are split by role and
    nested objects (SeaEval's per-language records) are named with dots, e.g. `Chinese.question`."""
    out = []
    for key, value in row.items():
        if isinstance(value, str) and key not in NOT_TEXT:
            out.append((parent + key, value, None))
        elif isinstance(value, dict) and not parent and key != "meta":
            out.extend(_text_fields(value, f"{key}."))
        elif key in TEXT_LISTS and isinstance(value, list):
            role_key, text_key = TEXT_LISTS[key]
            for m in value:
                if isinstance(m, dict) and isinstance(m.get(text_key), str):
                    out.append((f"{key}[{m.get(role_key)}]", m[text_key], m.get("language")))
    return out


def row_formats(row: dict) -> list[tuple[str, str]]:
    """(format, column prefix) pairs a row holds: `en_instruction` + `zh_instruction` give two alpaca prefixes."""
    prefixes = sorted(k[: -len("instruction")] for k in row if k.endswith("instruction"))
    found = []
    for prefix in prefixes or [""]:
        try:
            found.append((detect_format(row, prefix), prefix))
        except CrosstuneError:
            pass
    return found


def profile(path: str | Path, sample: int = 2000, seed: int = 0, backend: str = "pycld2") -> tuple[int, list[FieldProfile]]:
    """Count every row and measure every field in one streamed pass (every row is validated against the first
    row's formats, file:line errors); detect languages on a seeded reservoir sample of `sample` rows."""
    from crosstune.data.langid import get_detector

    rng = random.Random(seed)
    fields: dict[str, FieldProfile] = {}
    reservoir: list[list[tuple[str, str]]] = []  # per sampled row: (field, text) of its non-empty texts
    formats = None
    n = 0
    for line, row in read_rows(path):
        if formats is None:
            formats = row_formats(row)
        for fmt, prefix in formats:
            row_to_example(row, fmt, where(path, line), index=n, prefix=prefix)
        texts = []
        for name, text, declared in _text_fields(row):
            prof = fields.get(name)
            if prof is None:
                prof = fields[name] = FieldProfile(name)
            prof.count += 1
            prof.lengths.append(len(text))
            if not text.strip():
                prof.empty += 1
            else:
                texts.append((name, text))
            if declared:
                prof.declared[str(declared)] += 1
        if n < sample:  # reservoir sampling (algorithm R): a uniform sample without knowing n in advance
            reservoir.append(texts)
        else:
            j = rng.randrange(n + 1)
            if j < sample:
                reservoir[j] = texts
        n += 1
    by_field: dict[str, list[str]] = {}
    for texts in reservoir:
        for name, text in texts:
            by_field.setdefault(name, []).append(text)
    detector = get_detector(backend)
    for name, batch in by_field.items():
        for tag, _ in detector.detect_many(batch):
            fields[name].detected[tag or "unknown"] += 1
    return n, list(fields.values())
