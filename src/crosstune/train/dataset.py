"""Rows on disk -> tokenized train/eval sets, with counts of what was truncated or dropped."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from crosstune.console import console
from crosstune.data.io import read_examples
from crosstune.errors import CrosstuneError
from crosstune.train.config import TrainConfig
from crosstune.train.tokenize import IGNORE, Tokenized, tokenize_all


@dataclass
class TrainData:
    train: list[Tokenized]
    eval: list[Tokenized]
    stats: dict
    languages: list[str]
    modes: list[str]

    def targets(self, i: int, split: str = "train") -> int:
        """Number of predicted tokens (labels shifted by one) of example i."""
        ex = (self.train if split == "train" else self.eval)[i]
        return sum(1 for t in ex.labels[1:] if t != IGNORE)


def _read(cfg: TrainConfig, field: str) -> list:
    path = getattr(cfg, field)
    if not Path(path).is_file():
        raise CrosstuneError(f"{cfg._source}: field '{field}': no such data file {path!r}")
    return list(read_examples(path))


def load_data(cfg: TrainConfig, tokenizer, template: str) -> TrainData:
    rows = _read(cfg, "data")
    if not rows:
        raise CrosstuneError(f"{cfg.data}: the dataset is empty (no rows to train on)")
    rng = random.Random(cfg.seed)
    if cfg.max_rows and cfg.max_rows + cfg.eval_rows < len(rows):  # sample before tokenizing: cheap on 100k+ rows
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), cfg.max_rows + cfg.eval_rows))]
    eval_rows = _read(cfg, "eval_data") if cfg.eval_data else []
    if not cfg.eval_data and cfg.eval_rows:
        if cfg.eval_rows >= len(rows):
            raise CrosstuneError(f"eval_rows={cfg.eval_rows}: the data has only {len(rows)} rows")
        order = list(range(len(rows)))
        rng.shuffle(order)
        held = set(order[:cfg.eval_rows])
        eval_rows = [r for i, r in enumerate(rows) if i in held]
        rows = [r for i, r in enumerate(rows) if i not in held]
    t = cfg.tokenize
    train, stats = tokenize_all(rows, tokenizer, template, t.loss_on, t.max_length, t.overflow, cfg.data)
    ev, ev_stats = (tokenize_all(eval_rows, tokenizer, template, t.loss_on, t.max_length, t.overflow,
                                 cfg.eval_data or "eval") if eval_rows else ([], Counter()))
    report = {"train": dict(stats), "eval": dict(ev_stats)}
    for split, s in report.items():
        if s.get("truncated") or s.get("dropped_too_long") or s.get("dropped_no_target"):
            console.print(f"[yellow]warning:[/] {split}: {s.get('truncated', 0)} rows truncated, "
                          f"{s.get('dropped_too_long', 0) + s.get('dropped_no_target', 0)} dropped "
                          f"(tokenize.max_length={t.max_length}, overflow={t.overflow})")
    languages = sorted({x.language for x in train + ev})
    modes = sorted({x.mode for x in train + ev})
    return TrainData(train, ev, report, languages, modes)
