"""Paired significance between two evaluation runs of the same task (a tuned model vs its base): per language and
overall, on the items both runs scored. Per language (one pair per item): McNemar's exact test on the discordant
pairs. Overall (an item's languages are not independent): Durkalski's McNemar test clustered by item. The interval of
the difference is Newcombe's paired score interval (`crosstune.eval.intervals`, counts scaled to the effective number
of items when pooled); when no pair differs it is still an interval, and `no_pair_differs` says so.
`compare_outcomes` does the same for any paired pass/fail outcome (the report also uses it for response-language
fidelity)."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

from crosstune.errors import CrosstuneError
from crosstune.eval import intervals
from crosstune.eval.rundir import read_rows


def run_folders(run: Path) -> dict[str, Path]:
    """{task or task/mode: folder} for every folder under RUN holding predictions.jsonl and summary.json."""
    run = Path(run)
    if not run.is_dir():
        raise CrosstuneError(f"{run}: no such run folder")
    found = {}
    for pred in sorted(run.rglob("predictions.jsonl")):
        if (pred.parent / "summary.json").exists():
            found[str(pred.parent.relative_to(run)) if pred.parent != run else run.name] = pred.parent
    if not found:
        raise CrosstuneError(f"{run}: no finished task runs (folders with predictions.jsonl and summary.json)")
    return found


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b = right only in A, c = right only in B."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    p = 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, p)


def _paired(a_rows: list[dict], b_rows: list[dict], where_a: Path, where_b: Path):
    a = {(r["id"], r["language"]): bool(r["correct"]) for r in a_rows}
    b = {(r["id"], r["language"]): bool(r["correct"]) for r in b_rows}
    shared = sorted(set(a) & set(b))
    if not shared:
        raise CrosstuneError(f"{where_a} and {where_b}: no (item, language) pair in common")
    return shared, a, b


def compare_task(dir_a: Path, dir_b: Path) -> dict:
    shared, a, b = _paired(read_rows(dir_a / "predictions.jsonl", what="prediction row"),
                           read_rows(dir_b / "predictions.jsonl", what="prediction row"), dir_a, dir_b)
    return compare_outcomes(a, b)


def _block(xa: list[bool], xb: list[bool], items: list | None) -> dict:
    """One comparison; `items` (the item of each pair) when pairs of one item are correlated, else None."""
    n = len(xa)
    only_a = sum(1 for x, y in zip(xa, xb) if x and not y)
    only_b = sum(1 for x, y in zip(xa, xb) if y and not x)
    clustered = items is not None and len(set(items)) < n
    p = intervals.clustered_mcnemar(xa, xb, items) if clustered else mcnemar_exact(only_a, only_b)
    return {"n": n, "n_items": len(set(items)) if items is not None else n, "acc_a": sum(xa) / n,
            "acc_b": sum(xb) / n, "diff_b_minus_a": (only_b - only_a) / n, "right_only_a": only_a,
            "right_only_b": only_b, "no_pair_differs": only_a + only_b == 0, "mcnemar_p": p,
            "test": "McNemar clustered by item (Durkalski)" if clustered else "McNemar exact",
            "ci95": intervals.paired_diff_ci(xa, xb, items if clustered else None),
            "interval": intervals.PAIRED_RULE + (f" ({intervals.CLUSTER_NOTE})" if clustered else "")}


def compare_outcomes(a: dict, b: dict) -> dict:
    """Paired comparison of two runs' right/wrong outcomes keyed (item id, language, ...): per language and overall,
    on the keys both have. Any pass/fail outcome works: a chosen option, or a response in the expected language."""
    shared = sorted(set(a) & set(b))
    languages = list(dict.fromkeys(k[1] for k in shared))
    out: dict = {"n_pairs": len(shared), "languages": languages, "per_language": {}}
    for lang in languages:
        keys = [k for k in shared if k[1] == lang]
        out["per_language"][lang] = _block([a[k] for k in keys], [b[k] for k in keys],
                                           [k[0] for k in keys] if len(keys) > len({k[0] for k in keys}) else None)
    out["overall"] = _block([a[k] for k in shared], [b[k] for k in shared], [k[0] for k in shared])
    return out


def describe_diff(r: dict, digits: int = 3) -> str:
    """`+0.077 [-0.12, +0.28]`, and `(no pair differs, n = 13)` when the runs agree on every pair."""
    text = f"{r['diff_b_minus_a']:+.{digits}f}{intervals.fmt_ci(r['ci95'], digits, signed=True)}"
    items = f", {r['n_items']} items" if r["n_items"] != r["n"] else ""
    return text + (f" (no pair differs: {r['n']} pairs{items})" if r["no_pair_differs"] else "")


def compare_runs(run_a: Path, run_b: Path) -> dict:
    fa, fb = run_folders(run_a), run_folders(run_b)
    common = [t for t in fa if t in fb]
    if not common:
        raise CrosstuneError(f"{run_a} ({', '.join(fa)}) and {run_b} ({', '.join(fb)}): no task in common")
    result = {"run_a": str(run_a), "run_b": str(run_b), "tasks": {}}
    for task in common:
        for f in (fa[task], fb[task]):
            json.loads((f / "summary.json").read_text(encoding="utf-8"))  # both must be finished runs
        result["tasks"][task] = compare_task(fa[task], fb[task])
    return result


def compare_table(result: dict) -> str:
    lines = [f"A = {result['run_a']}, B = {result['run_b']}", "",
             "| task | language | n | acc A | acc B | B - A [95% CI] | right only A / only B | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]
    for task, t in result["tasks"].items():
        for lang, r in [*t["per_language"].items(), ("all", t["overall"])]:
            lines.append(f"| {task} | {lang} | {r['n']} | {r['acc_a']:.3f} | {r['acc_b']:.3f} | {describe_diff(r)} | "
                         f"{r['right_only_a']} / {r['right_only_b']} | {intervals.fmt_p(r['mcnemar_p'])} |")
    return "\n".join(lines) + "\n" + RULES + "\n"


RULES = (f"95% CI of B - A: {intervals.PAIRED_RULE}; per language McNemar's exact test; `all` pools the languages of "
         "each item, so its interval uses the effective number of items and its test is McNemar's clustered by item "
         "(Durkalski).")
