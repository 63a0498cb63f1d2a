"""Accuracy and speed of the language-ID backends on real sentences of the project's languages.

Sentences: FLORES-200 dev (en, zh, vi, id, ms), NTREX-128 (es, fil) and short Alpaca instructions (en, zh),
N per language. Gold = the file's language. Run: `python benchmarks/bench_langid.py [--n 300]`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from crosstune.data.io import read_rows  # noqa: E402
from crosstune.data.langid import get_detector, same_base_language  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LANGS = ["en", "zh", "vi", "id", "ms", "es", "fil"]


def sentences(n: int) -> dict[str, list[tuple[str, str]]]:
    """set name -> [(gold, text)]."""
    flores = DATA / "flores200_dev_seaeval"
    sets: dict[str, list[tuple[str, str]]] = {"flores/ntrex": [], "alpaca-instr": []}
    files = {"id": "ind", "vi": "vie", "zh": "zho", "ms": "zsm"}
    for lang, code in files.items():
        rows = [r for _, r in read_rows(flores / f"flores_{code}2eng_test.jsonl")][:n]
        sets["flores/ntrex"] += [(lang, r["context"]) for r in rows]
        if lang == "id":
            sets["flores/ntrex"] += [("en", r["answer"]) for r in rows]
    for lang, code in {"es": "spa", "fil": "fil"}.items():
        lines = (DATA / "ntrex128" / f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()
        sets["flores/ntrex"] += [(lang, t) for t in lines[:n]]
    rows = [r for _, r in zip(range(n), read_rows(DATA / "alpaca_chinese_parallel" / "alpaca_en_zh_52k_v3.jsonl.gz"))]
    for lang in ("en", "zh"):
        sets["alpaca-instr"] += [(lang, r[f"{lang}_instruction"]) for _, r in rows]
    return sets


def run(name: str, detector, items: list[tuple[str, str]]) -> dict:
    texts = [t for _, t in items]
    t0 = time.perf_counter()
    preds = detector.detect_many(texts)
    dt = time.perf_counter() - t0
    per_lang: dict[str, list[int]] = {}
    errors: Counter = Counter()
    for (gold, _), (pred, _) in zip(items, preds):
        ok = per_lang.setdefault(gold, [0, 0])
        hit = same_base_language(pred, gold)  # zh-Hant counts as zh
        ok[0] += hit
        ok[1] += 1
        if not hit:
            errors[f"{gold}->{pred}"] += 1
    correct = sum(v[0] for v in per_lang.values())
    return {"backend": name, "n": len(items), "correct": correct, "acc": correct / len(items),
            "texts_per_s": len(items) / dt, "per_lang": {k: f"{a}/{b}" for k, (a, b) in per_lang.items()},
            "errors": dict(errors.most_common(6))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="sentences per language")
    ap.add_argument("--skip-lingua-all", action="store_true", help="skip lingua over all 75 languages (1.3 GB RAM)")
    args = ap.parse_args()
    sets = sentences(args.n)
    candidates = [("pycld2", lambda: get_detector("pycld2")),
                  ("pycld2 (re-ranked to 7 langs)", lambda: get_detector("pycld2", LANGS)),
                  ("lingua (7 langs)", lambda: get_detector("lingua", LANGS))]
    if not args.skip_lingua_all:
        candidates.append(("lingua (all 75 langs)", lambda: get_detector("lingua")))
    results = []
    for name, make in candidates:
        t0 = time.perf_counter()
        det = make()
        det.detect("warm up the model")
        load = time.perf_counter() - t0
        for set_name, items in sets.items():
            r = run(name, det, items)
            r["set"], r["load_s"] = set_name, round(load, 2)
            results.append(r)
            print(json.dumps(r, ensure_ascii=False), flush=True)
    fast = {r["set"]: r["texts_per_s"] for r in results if r["backend"] == "pycld2"}
    print("\n| backend | set | accuracy | texts/s | speed vs pycld2 | load s | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['set']} | {r['correct']}/{r['n']} ({r['acc']:.1%}) | {r['texts_per_s']:,.0f} | "
              f"{r['texts_per_s'] / fast[r['set']]:.3f}x | {r['load_s']} | {r['errors']} |")


if __name__ == "__main__":
    main()
