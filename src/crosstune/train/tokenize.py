"""Segments -> `input_ids` + `labels` (-100 where no loss), with truncate-or-drop for over-long rows, counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError
from crosstune.models.render import adds_bos, render_segments

IGNORE = -100


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


def tokenize_example(ex: Example, tokenizer, template: str, loss_on: str, bos: bool = False) -> Tokenized:
    try:
        segments = render_segments(ex, template, tokenizer)
    except ValueError as e:  # no assistant message
        raise CrosstuneError(f"example {ex.id!r}: {e}") from None
    ids: list[int] = [tokenizer.bos_token_id] if bos and template != "chat" else []
    labels: list[int] = [IGNORE] * len(ids)
    last_response = max(i for i, (_, r) in enumerate(segments) if r)
    for i, (text, is_response) in enumerate(segments):
        seg = tokenizer(text, add_special_tokens=False)["input_ids"]
        trained = loss_on == "all" or (is_response and (loss_on == "response" or i == last_response))
        ids += seg
        labels += seg if trained else [IGNORE] * len(seg)
    lang = ex.response.language or "unknown"
    return Tokenized(ex.id, ids, labels, lang, str(ex.meta.get("mode") or "none"))


def tokenize_all(examples: Iterable[Example], tokenizer, template: str, loss_on: str, max_length: int,
                 overflow: str, source: str = "data") -> tuple[list[Tokenized], Counter]:
    """Tokenize every row; over-long rows are truncated (right side) or dropped, and both are counted."""
    stats: Counter = Counter()
    out: list[Tokenized] = []
    bos = adds_bos(tokenizer)
    for ex in examples:
        stats["rows"] += 1
        t = tokenize_example(ex, tokenizer, template, loss_on, bos)
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
