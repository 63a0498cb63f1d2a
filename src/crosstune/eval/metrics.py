"""Cross-lingual metrics for parallel tasks, from each prediction's answer *key* (the option index, a number, ...)
and its correctness, never from text prefixes. SeaEval's formulas (`tiger_eval/cross_lingual_assessment.py`):

- Acc_l = mean over items of correct; Accuracy = mean of Acc_l.
- M_S = share of items whose key is the same in every language of S (correctness ignored); Consistency_s = mean of
  M_S over all subsets of size s; AC3_s = 2AC/(A+C+eps).
Beyond SeaEval: the pairwise answer-agreement matrix, consistent-and-correct, 95% intervals (`ci95`: accuracy by
the one rule for proportions, `crosstune.eval.intervals`, Wilson clustered by item; Con_s and AC3_s, which are not
proportions, by a percentile bootstrap over items),
the predicted-label histogram (position bias) and the AC3 of an always-the-same-label model, and RankC (Qi,
Fernandez, Bisazza, EMNLP 2023) for candidate rankings. `seaeval_scores` keeps SeaEval's string form (labels
`p[0:3]`, correctness `p == g`) for scoring SeaEval's own prediction files.
"""

from __future__ import annotations

import itertools
from collections import Counter
from math import comb

import numpy as np

from crosstune.eval import intervals

EPS = 1e-10  # SeaEval; the CrossIn fork uses 1e-9


def ac3(acc: float, con: float, eps: float = EPS) -> float:
    return 2 * con * acc / (con + acc + eps)


def consistency_scores(keys: list[dict], correct: list[dict], languages: list[str], eps: float = EPS) -> dict:
    """SeaEval's score dict (overall_acc, language_acc, consistency_score_s, detailed_consistency_score, AC3_s)
    from per-item {lang: key} and {lang: bool}."""
    n = len(keys)
    lang_acc = {lang: sum(bool(c[lang]) for c in correct) / n for lang in languages}
    out: dict = {"overall_acc": sum(lang_acc.values()) / len(lang_acc), "language_acc": lang_acc}
    detailed = {}
    for s in range(2, len(languages) + 1):
        combos = {}
        for combo in itertools.combinations(languages, s):
            combos[",".join(combo)] = sum(len({k[lang] for lang in combo}) == 1 for k in keys) / n
        detailed[f"{s}_combine"] = combos
        out[f"consistency_score_{s}"] = sum(combos.values()) / len(combos)
    out["detailed_consistency_score"] = detailed
    for s in range(2, len(languages) + 1):
        out[f"AC3_{s}"] = ac3(out["overall_acc"], out[f"consistency_score_{s}"], eps)
    return out


def _string_form(preds, golds, languages):
    keys = [{lang: p[lang][0:3] for lang in languages} for p in preds]
    correct = [{lang: p[lang] == g[lang] for lang in languages} for p, g in zip(preds, golds)]
    return keys, correct


def seaeval_scores(preds: list[dict[str, str]], golds: list[dict[str, str]], languages: list[str],
                   eps: float = EPS) -> dict:
    """SeaEval's own form: predictions and golds are choice strings; the label is `p[0:3]`."""
    return consistency_scores(*_string_form(preds, golds, languages), languages, eps)


def per_item(keys, correct, languages, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: accuracy over languages, share of size-s subsets that agree, share that agree *and* are correct."""
    acc, con, cc = [], [], []
    total = comb(len(languages), s)
    for k, c in zip(keys, correct):
        groups = Counter(k[lang] for lang in languages)
        n_correct = sum(bool(c[lang]) for lang in languages)
        acc.append(n_correct / len(languages))
        con.append(sum(comb(m, s) for m in groups.values()) / total)  # subsets drawn within one key agree
        cc.append(comb(n_correct, s) / total)  # all correct implies the same (gold) key
    return np.array(acc), np.array(con), np.array(cc)


def per_item_scores(preds, golds, languages, s: int):
    return per_item(*_string_form(preds, golds, languages), languages, s)


def bootstrap_keys(keys, correct, languages, s: int = 3, n_boot: int = 1000, seed: int = 0, eps: float = EPS) -> dict:
    """95% percentile intervals for Accuracy, Consistency_s and AC3_s, resampling items (all languages together)."""
    acc, con, _ = per_item(keys, correct, languages, s)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(acc), size=(n_boot, len(acc)))
    a, c = acc[idx].mean(1), con[idx].mean(1)
    f = 2 * a * c / (a + c + eps)
    lo, hi = 2.5, 97.5
    return {"n_boot": n_boot, "seed": seed, "s": s,
            "accuracy": [float(np.percentile(a, lo)), float(np.percentile(a, hi))],
            f"consistency_{s}": [float(np.percentile(c, lo)), float(np.percentile(c, hi))],
            f"AC3_{s}": [float(np.percentile(f, lo)), float(np.percentile(f, hi))]}


def bootstrap(preds, golds, languages, s: int = 3, n_boot: int = 1000, seed: int = 0, eps: float = EPS) -> dict:
    return bootstrap_keys(*_string_form(preds, golds, languages), languages, s, n_boot, seed, eps)


def position_bias_labels(pred_labels: list[dict], gold_labels: list[dict], languages) -> dict:
    """Predicted vs gold label counts, overall and per language, and the AC3_s of an always-`X` model."""
    pred_all = Counter(p[lang] for p in pred_labels for lang in languages)
    gold_all = Counter(g[lang] for g in gold_labels for lang in languages)
    per_lang = {lang: dict(sorted(Counter(p[lang] for p in pred_labels).items())) for lang in languages}
    total = sum(gold_all.values())
    always = {label: ac3(k / total, 1.0) for label, k in sorted(gold_all.items())}
    return {"predicted": dict(sorted(pred_all.items())), "gold": dict(sorted(gold_all.items())),
            "predicted_per_language": per_lang, "always_label_ac3": always}


def position_bias(preds, golds, languages) -> dict:
    return position_bias_labels([{lang: p[lang][0:3] for lang in languages} for p in preds],
                                [{lang: g[lang][0:3] for lang in languages} for g in golds], languages)


def agreement_matrix(keys: list[dict], languages: list[str]) -> dict:
    """Share of items on which two languages give the same answer key (1.0 on the diagonal)."""
    n = len(keys)
    return {a: {b: (1.0 if a == b else sum(k[a] == k[b] for k in keys) / n) for b in languages} for a in languages}


def summarize_keys(keys, correct, languages, n_boot: int = 1000, seed: int = 0, eps: float = EPS,
                   labels: tuple[list[dict], list[dict]] | None = None) -> dict:
    """Every cross-lingual number of a parallel task: SeaEval's keys (`overall_acc`, `consistency_score_s`, `AC3_s`,
    ...), the interface names (`accuracy`, `per_language.<lang>.accuracy`, `consistency_s`, `ac3_s`), the agreement
    matrix, consistent-and-correct, bootstrap intervals and (with `labels`) the position-bias diagnostic."""
    out = consistency_scores(keys, correct, languages, eps)
    out["n_items"] = len(keys)
    out["languages"] = list(languages)
    out["accuracy"] = out["overall_acc"]
    out["per_language"] = {lang: {"accuracy": out["language_acc"][lang], "n": len(keys)} for lang in languages}
    for s in range(2, len(languages) + 1):
        out[f"consistency_{s}"] = out[f"consistency_score_{s}"]
        out[f"ac3_{s}"] = out[f"AC3_{s}"]
        out[f"consistent_correct_{s}"] = float(per_item(keys, correct, languages, s)[2].mean())
    out["agreement"] = agreement_matrix(keys, languages)
    if len(languages) >= 3:
        out["bootstrap_95"] = bootstrap_keys(keys, correct, languages, 3, n_boot, seed, eps)
    out["ci95"] = accuracy_intervals(correct, languages, out.get("bootstrap_95"))
    if labels is not None:
        out["position_bias"] = position_bias_labels(*labels, languages)
    return out


def accuracy_intervals(correct: list[dict], languages: list[str], boot: dict | None = None) -> dict:
    """`ci95`: accuracy (pooled over languages, clustered by item) and each language's accuracy by the one rule for
    proportions, Con3 and AC3_3 from the bootstrap; `rules` names each."""
    flat = [bool(c[lang]) for c in correct for lang in languages]
    items = [i for i in range(len(correct)) for _ in languages]
    out: dict = {"accuracy": intervals.proportion_ci(flat, items),
                 "per_language": {lang: intervals.proportion_ci([bool(c[lang]) for c in correct])
                                  for lang in languages},
                 "rules": {"accuracy": f"{intervals.RULE} ({intervals.CLUSTER_NOTE})"}}
    for key in ("consistency_3", "AC3_3"):
        if boot and key in boot:
            out[key] = boot[key]
            out["rules"][key] = f"95% percentile bootstrap over items ({boot['n_boot']} resamples)"
    return out


def summarize(preds, golds, languages, n_boot: int = 1000, seed: int = 0, eps: float = EPS) -> dict:
    """SeaEval's string form: predictions and golds are choice strings."""
    keys, correct = _string_form(preds, golds, languages)
    labels = ([{lang: p[lang][0:3] for lang in languages} for p in preds],
              [{lang: g[lang][0:3] for lang in languages} for g in golds])
    return summarize_keys(keys, correct, languages, n_boot, seed, eps, labels)


# ---- RankC (Qi, Fernandez, Bisazza, EMNLP 2023; Betswish/Cross-Lingual-Consistency `RankC.py`) ----------------

def rankc_weights(n: int) -> np.ndarray:
    """w_j = exp(N - j) / sum_k exp(N - k), j = 1..N: softmax over decreasing ranks."""
    order = np.arange(n, 0, -1, dtype=float)
    e = np.exp(order - order.max())
    return e / e.sum()


def rankc_pair(rank_a: list[int], rank_b: list[int]) -> float:
    """consist(q, l, l') = sum_j w_j P@j, P@j = |top_j(l) & top_j(l')| / j; candidates compared by index."""
    n = len(rank_a)
    w = rankc_weights(n)
    return float(sum(w[j] * len(set(rank_a[:j + 1]) & set(rank_b[:j + 1])) / (j + 1) for j in range(n)))


def rankc(rankings: list[dict[str, list[int]]], languages: list[str]) -> dict:
    """RankC(l, l') = mean over queries of consist; `rankc` is the mean over all language pairs."""
    pairs = {}
    for a, b in itertools.combinations(languages, 2):
        pairs[f"{a},{b}"] = float(np.mean([rankc_pair(r[a], r[b]) for r in rankings])) if rankings else 0.0
    matrix = {a: {b: 1.0 if a == b else pairs.get(f"{a},{b}", pairs.get(f"{b},{a}")) for b in languages}
              for a in languages}
    return {"rankc": float(np.mean(list(pairs.values()))) if pairs else 1.0, "rankc_pairs": pairs,
            "rankc_matrix": matrix}
