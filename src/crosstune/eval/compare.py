"""Paired significance between two evaluation runs of the same task (a tuned model vs its base): per language and
overall, on the items both runs scored. McNemar's exact test on the discordant pairs, and a paired bootstrap
interval for the accuracy difference (items resampled, all languages of an item together). `compare_outcomes` does the
same for any paired pass/fail outcome (the report also uses it for response-language fidelity)."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import numpy as np

from crosstune.errors import CrosstuneError
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


def compare_task(dir_a: Path, dir_b: Path, n_boot: int = 2000, seed: int = 0) -> dict:
    shared, a, b = _paired(read_rows(dir_a / "predictions.jsonl", what="prediction row"),
                           read_rows(dir_b / "predictions.jsonl", what="prediction row"), dir_a, dir_b)
    return compare_outcomes(a, b, n_boot, seed)


def compare_outcomes(a: dict, b: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of two runs' right/wrong outcomes keyed (item id, language, ...): per language and overall,
    on the keys both have. Any pass/fail outcome works: a chosen option, or a response in the expected language."""
    shared = sorted(set(a) & set(b))
    languages = list(dict.fromkeys(k[1] for k in shared))
    items = list(dict.fromkeys(k[0] for k in shared))
    rng = np.random.default_rng(seed)
    out: dict = {"n_pairs": len(shared), "languages": languages, "per_language": {}}

    def block(keys: list[tuple], groups: list[list[int]]) -> dict:
        xa = np.array([a[k] for k in keys], dtype=float)
        xb = np.array([b[k] for k in keys], dtype=float)
        only_a, only_b = int(((xa == 1) & (xb == 0)).sum()), int(((xa == 0) & (xb == 1)).sum())
        diff = xb - xa  # resample whole items (their languages together)
        sums = np.array([diff[g].sum() for g in groups])
        counts = np.array([len(g) for g in groups])
        idx = rng.integers(0, len(groups), size=(n_boot, len(groups)))
        boot = sums[idx].sum(1) / counts[idx].sum(1)
        return {"n": len(keys), "acc_a": float(xa.mean()), "acc_b": float(xb.mean()), "diff_b_minus_a": float(diff.mean()),
                "right_only_a": only_a, "right_only_b": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b),
                "bootstrap_95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
                "bootstrap_p": float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))}

    for lang in languages:
        keys = [k for k in shared if k[1] == lang]
        out["per_language"][lang] = block(keys, [[j] for j in range(len(keys))])
    pos = {k: j for j, k in enumerate(shared)}
    by_item: dict = {}
    for k in shared:
        by_item.setdefault(k[0], []).append(pos[k])
    out["overall"] = block(shared, [by_item[i] for i in items])
    return out


def compare_runs(run_a: Path, run_b: Path, n_boot: int = 2000, seed: int = 0) -> dict:
    fa, fb = run_folders(run_a), run_folders(run_b)
    common = [t for t in fa if t in fb]
    if not common:
        raise CrosstuneError(f"{run_a} ({', '.join(fa)}) and {run_b} ({', '.join(fb)}): no task in common")
    result = {"run_a": str(run_a), "run_b": str(run_b), "n_boot": n_boot, "seed": seed, "tasks": {}}
    for task in common:
        for f in (fa[task], fb[task]):
            json.loads((f / "summary.json").read_text(encoding="utf-8"))  # both must be finished runs
        result["tasks"][task] = compare_task(fa[task], fb[task], n_boot, seed)
    return result


def compare_table(result: dict) -> str:
    lines = [f"A = {result['run_a']}, B = {result['run_b']}", "",
             "| task | language | n | acc A | acc B | B - A [95% CI] | right only A / only B | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]
    for task, t in result["tasks"].items():
        for lang, r in [*t["per_language"].items(), ("all", t["overall"])]:
            lo, hi = r["bootstrap_95"]
            lines.append(f"| {task} | {lang} | {r['n']} | {r['acc_a']:.3f} | {r['acc_b']:.3f} | "
                         f"{r['diff_b_minus_a']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {r['right_only_a']} / {r['right_only_b']} "
                         f"| {r['mcnemar_p']:.3g} |")
    return "\n".join(lines) + "\n"
