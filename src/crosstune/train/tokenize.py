"""Examples -> `input_ids` + `labels` (-100 where no loss) through the one renderer, with truncate-or-drop for
over-long rows, counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from crosstune.errors import CrosstuneError
from crosstune.models.render import IGNORE, train_ids
from crosstune.schema import Example


@dataclass(slots=True)
class Tokenized:
    id: str
    input_ids: list[int]
    labels: list[int]
    language: str  # response language: the last assistant message's `language`
    mode: str  # `meta.mode` (CrossIn mode), or 'none'

    @property
    def n_targets(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def tokenize_example(ex: Example, tokenizer, template: str, loss_on: str) -> Tokenized:
    """Ids and labels from the one renderer (models/render.py `train_ids`: its BOS rule, its loss mask)."""
    try:
        r = train_ids(ex, template, tokenizer, loss_on)
    except ValueError as e:  # no assistant message
        raise CrosstuneError(f"example {ex.id!r}: {e}") from None
    lang = ex.response.language or "unknown"
    return Tokenized(ex.id, r.ids, r.labels, lang, str(ex.meta.get("mode") or "none"))


def tokenize_all(examples: Iterable[Example], tokenizer, template: str, loss_on: str, max_length: int,
                 overflow: str, source: str = "data") -> tuple[list[Tokenized], Counter]:
    """Tokenize every row; over-long rows are truncated (right side) or dropped, and both are counted."""
    stats: Counter = Counter()
    out: list[Tokenized] = []
    for ex in examples:
        stats["rows"] += 1
        t = tokenize_example(ex, tokenizer, template, loss_on)
        if len(t.input_ids) > max_length:
            if overflow == "drop":
                stats["dropped_too_long"] += 1
                continue
            stats["truncated"] += 1
            t.input_ids, t.labels = t.input_ids[:max_length], t.labels[:max_length]
        if t.n_targets == 0:  # the whole response was cut off: nothing to learn from this row
            stats["dropped_no_target"] += 1
            continue
        stats["kept"] += 1
        stats["tokens"] += len(t.input_ids)
        stats["target_tokens"] += t.n_targets
        out.append(t)
    if stats["rows"] == 0:
        raise CrosstuneError(f"{source}: the dataset is empty (no rows to train on)")
    if not out:
        raise CrosstuneError(f"{source}: all {stats['rows']} rows were dropped (too long for "
                             f"tokenize.max_length={max_length}); raise max_length or use overflow=truncate")
    return out, stats
