"""A task run's summary from its scored rows: the cross-lingual metrics of `metrics.py` on the rows' answer keys,
plus what each kind adds per language (acc_sum and acc_norm for log-likelihood, EM/F1 for spans, RankC for cloze) and how
answers were extracted."""

from __future__ import annotations

from collections import Counter

import numpy as np

from crosstune.eval.metrics import rankc, summarize_keys
from crosstune.eval.options import label


def summarize_rows(cfg, rows: list[list[dict]], items, languages: list[str], n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """`rows[i][j]` is item i's scored row in languages[j]."""
    keys = [{lang: r["key"] for lang, r in zip(languages, rs)} for rs in rows]
    correct = [{lang: bool(r["correct"]) for lang, r in zip(languages, rs)} for rs in rows]
    labels = None
    if cfg.kind == "multiple_choice":
        labels = ([{lang: label(r["pred_index"]) for lang, r in zip(languages, rs)} for rs in rows],
                  [{lang: label(r["gold_index"]) for lang, r in zip(languages, rs)} for rs in rows])
    out = summarize_keys(keys, correct, languages, n_boot=n_boot, seed=seed, labels=labels)
    for j, lang in enumerate(languages):
        col = [rs[j] for rs in rows]
        extra = out["per_language"][lang]
        if col and "correct_norm" in col[0]:  # log-likelihood: both selections, whichever `select` picked
            extra["acc_sum"] = sum(r["pred_index_sum"] == r["gold_index"] for r in col) / len(col)
            extra["acc_norm"] = sum(r["correct_norm"] for r in col) / len(col)
        if col and "f1" in col[0]:
            extra["f1"] = float(np.mean([r["f1"] for r in col]))
            extra["exact_match"] = float(np.mean([r["exact_match"] for r in col]))
    for name in ("acc_sum", "acc_norm", "f1", "exact_match"):
        vals = [out["per_language"][lang][name] for lang in languages if name in out["per_language"][lang]]
        if vals and len(vals) == len(languages):
            out[name] = float(np.mean(vals))
    if cfg.kind == "cloze" and len(languages) >= 2:
        out.update(rankc([{lang: r["ranking"] for lang, r in zip(languages, rs)} for rs in rows], languages))
    out["extraction_paths"] = dict(sorted(Counter(r["extraction"] for rs in rows for r in rs).items()))
    return out
