"""SeaEval's cross-lingual metrics, exactly (`tiger_eval/cross_lingual_assessment.py`), plus diagnostics.

- Acc_l = mean over items of [pred == gold]; Accuracy = mean of Acc_l.
- M_S = share of items whose predicted *label* `pred[0:3]` (e.g. "(B)") is the same in every language of S;
  correctness is ignored. Consistency_s = mean of M_S over all subsets of size s. AC3_s = 2AC/(A+C+eps).
Beyond SeaEval: bootstrap 95% intervals over items, the predicted-label histogram (position bias), the AC3 an
always-the-same-label model would get, and consistency counted only when every language is also correct.
"""

from __future__ import annotations

import itertools
from collections import Counter
from math import comb

import numpy as np

EPS = 1e-10  # SeaEval; the CrossIn fork uses 1e-9


def ac3(acc: float, con: float, eps: float = EPS) -> float:
    return 2 * con * acc / (con + acc + eps)


def seaeval_scores(preds: list[dict[str, str]], golds: list[dict[str, str]], languages: list[str],
                   eps: float = EPS) -> dict:
    """SeaEval's score dict: overall_acc, language_acc, consistency_score_s, detailed_consistency_score, AC3_s."""
    n = len(preds)
    lang_acc = {lang: sum(p[lang] == g[lang] for p, g in zip(preds, golds)) / n for lang in languages}
    out: dict = {"overall_acc": sum(lang_acc.values()) / len(lang_acc), "language_acc": lang_acc}
    detailed = {}
    for s in range(2, len(languages) + 1):
        combos = {}
        for combo in itertools.combinations(languages, s):
            combos[",".join(combo)] = sum(len({p[lang][0:3] for lang in combo}) == 1 for p in preds) / n
        detailed[f"{s}_combine"] = combos
        out[f"consistency_score_{s}"] = sum(combos.values()) / len(combos)
    out["detailed_consistency_score"] = detailed
    for s in range(2, len(languages) + 1):
        out[f"AC3_{s}"] = ac3(out["overall_acc"], out[f"consistency_score_{s}"], eps)
    return out


def per_item_scores(preds, golds, languages, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: accuracy over languages, share of size-s subsets that agree, share that agree *and* are correct."""
    acc, con, cc = [], [], []
    total = comb(len(languages), s)
    for p, g in zip(preds, golds):
        labels = Counter(p[lang][0:3] for lang in languages)
        n_correct = sum(p[lang] == g[lang] for lang in languages)
        acc.append(n_correct / len(languages))
        con.append(sum(comb(k, s) for k in labels.values()) / total)  # subsets drawn within one label agree
        cc.append(comb(n_correct, s) / total)
    return np.array(acc), np.array(con), np.array(cc)


def bootstrap(preds, golds, languages, s: int = 3, n_boot: int = 1000, seed: int = 0, eps: float = EPS) -> dict:
    """95% percentile intervals for Accuracy, Consistency_s and AC3_s, resampling items (all languages together)."""
    acc, con, _ = per_item_scores(preds, golds, languages, s)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(acc), size=(n_boot, len(acc)))
    a, c = acc[idx].mean(1), con[idx].mean(1)
    f = 2 * a * c / (a + c + eps)
    lo, hi = 2.5, 97.5
    return {"n_boot": n_boot, "seed": seed, "s": s,
            "accuracy": [float(np.percentile(a, lo)), float(np.percentile(a, hi))],
            f"consistency_{s}": [float(np.percentile(c, lo)), float(np.percentile(c, hi))],
            f"AC3_{s}": [float(np.percentile(f, lo)), float(np.percentile(f, hi))]}


def position_bias(preds, golds, languages) -> dict:
    """Predicted vs gold label counts, overall and per language, and the AC3_s of an always-`X` model."""
    pred_all = Counter(p[lang][0:3] for p in preds for lang in languages)
    gold_all = Counter(g[lang][0:3] for g in golds for lang in languages)
    per_lang = {lang: dict(sorted(Counter(p[lang][0:3] for p in preds).items())) for lang in languages}
    total = sum(gold_all.values())
    always = {label: ac3(k / total, 1.0) for label, k in sorted(gold_all.items())}
    return {"predicted": dict(sorted(pred_all.items())), "gold": dict(sorted(gold_all.items())),
            "predicted_per_language": per_lang, "always_label_ac3": always}


def summarize(preds, golds, languages, n_boot: int = 1000, seed: int = 0, eps: float = EPS) -> dict:
    """SeaEval's keys plus `bootstrap_95`, `position_bias` and `consistent_correct_s`."""
    out = seaeval_scores(preds, golds, languages, eps)
    out["n_items"] = len(preds)
    out["languages"] = list(languages)
    for s in range(2, len(languages) + 1):
        out[f"consistent_correct_{s}"] = float(per_item_scores(preds, golds, languages, s)[2].mean())
    if len(languages) >= 3:
        out["bootstrap_95"] = bootstrap(preds, golds, languages, 3, n_boot, seed, eps)
    out["position_bias"] = position_bias(preds, golds, languages)
    return out
