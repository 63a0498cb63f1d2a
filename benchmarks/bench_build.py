"""Benchmark: CrossIn all modes (base, en2x, x2en, translate; N = all) from 52K Alpaca x en/zh/aligned vi, with
length, exact-dedup and language-ID filters; compared in the same run with a naive peer written the way the
released builder is (a Python loop appending dicts, a language-ID call per row and side, `json.dumps` per row of
the same schema as ours: messages with languages and the same meta keys).

    python benchmarks/bench_build.py [--repeats 2] [--workers N]

The corpus load (reading the gzip files; the vi alignment is cached on disk after its first run) is reported
apart from the build, and the language-ID time apart from the rest of the build. `--workers` is ours' process
count (default: the build's default, decided before the corpus load: 2 when 2+ cores are free, language ID in a
second process; 1 = everything in one process, like the peer). Wall and CPU ratios are both printed (the goal is
on CPU time); ours' CPU time includes its worker process, and "pauses" counts how often the build kept language
ID in process because the worker shared its core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402

from crosstune.data.build import plan_build, run_build  # noqa: E402
from crosstune.data.formats import alpaca_user_text  # noqa: E402
from crosstune.data.langid import get_detector, same_base_language  # noqa: E402
from crosstune.data.langid_pool import default_workers  # noqa: E402
from crosstune.data.recipes.sources import load_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def naive_build(corpus, langs: list[str], out: Path, seed: int = 0) -> dict:
    """The peer: same rows and filters, written as a plain loop (no memoized language ID, GC left on)."""
    t0, c0 = time.perf_counter(), time.process_time()
    rng = np.random.RandomState(seed)
    ids = corpus.parallel.ids(langs)
    xs = [x for x in langs if x != "en"]
    rows = []
    for item in corpus.parallel.items["en"]:
        instr, inp, out_ = corpus.fields("en", item)
        user = alpaca_user_text(instr, inp)
        rows.append({"user": user, "bot": out_, "ul": "en", "bl": "en", "mode": "base", "check": user,
                     "src": [f"en:{item}"], "f": (instr, inp, ""), "d": "none"})
    for _ in range(len(ids)):
        item, x = ids[rng.randint(len(ids))], xs[rng.randint(len(xs))]
        en_i, en_in, en_o = corpus.fields("en", item)
        x_i, x_in, x_o = corpus.fields(x, item)
        src = [f"en:{item}", f"{x}:{item}"]
        # language ID checks the source texts, without tag or English directive, as ours does
        rows.append({"user": f"{en_i}\n\n{en_in}\n[{x}]", "bot": x_o, "ul": "en", "bl": x, "mode": "en2x",
                     "check": alpaca_user_text(en_i, en_in), "src": src, "f": (en_i, f"{en_in}\n[{x}]", f"\n[{x}]"),
                     "d": "tag"})
        rows.append({"user": f"{x_i}\n\n{x_in}\n[en]", "bot": en_o, "ul": x, "bl": "en", "mode": "x2en",
                     "check": alpaca_user_text(x_i, x_in), "src": src[::-1], "f": (x_i, f"{x_in}\n[en]", "\n[en]"),
                     "d": "tag"})
        rows.append({"user": f"Translate the following sentence into English.\n\n{x_i}", "bot": en_i,
                     "ul": x, "bl": "en", "mode": "translate", "check": x_i, "src": src[::-1],
                     "f": ("Translate the following sentence into English.", x_i, ""), "d": "none"})
    t_gen = time.perf_counter()
    det = get_detector("pycld2", langs)
    seen, kept, n_texts = set(), [], 0
    lid_s = 0.0
    for r in rows:
        if not r["user"].strip() or not r["bot"].strip():
            continue
        key = json.dumps([r["user"], r["bot"]], ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        t = time.perf_counter()
        (ut, _), (bt, _) = det.detect(r["check"]), det.detect(r["bot"])
        lid_s += time.perf_counter() - t
        n_texts += 2
        if (ut and not same_base_language(ut, r["ul"])) or (bt and not same_base_language(bt, r["bl"])):
            continue
        kept.append(r)
    t_filter, c_filter = time.perf_counter(), time.process_time()
    with open(out, "w", encoding="utf-8") as f:
        for k, r in enumerate(kept):  # the same row schema as ours (messages with languages, the same meta keys)
            instr, inp, marker = r["f"]
            f.write(json.dumps({"id": str(k), "messages": [
                {"role": "user", "content": r["user"], "language": r["ul"]},
                {"role": "assistant", "content": r["bot"], "language": r["bl"]}],
                "meta": {"recipe": "crossin", "mode": r["mode"], "instruction_language": r["ul"],
                         "response_language": r["bl"], "source_ids": r["src"],
                         "fields": {"instruction": instr, "input": inp, "output": r["bot"]},
                         "directive": r["d"], "marker": marker}}, ensure_ascii=False) + "\n")
    t_end, c_end = time.perf_counter(), time.process_time()
    return {"rows_in": len(rows), "rows_out": len(kept), "build_s": t_filter - t0, "langid_s": lid_s,
            "build_cpu_s": c_filter - c0, "write_cpu_s": c_end - c_filter,
            "texts": n_texts, "generate_s": t_gen - t0, "write_s": t_end - t_filter}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "crossin.yaml"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None, help="ours' processes (default: the build's default)")
    args = ap.parse_args()
    # the build's default process count, decided as `crosstune data build` decides it: before any work (later,
    # the load average would count this script's own corpus load as other work)
    workers = args.workers or default_workers()
    plan = plan_build(args.recipe)
    langs = plan.params.languages
    t = time.perf_counter()
    corpus = load_corpus(plan.config.sources, plan.lookup)
    print(f"corpus load (gzip JSONL + cached vi alignment): {time.perf_counter() - t:.1f}s; "
          f"items {', '.join(f'{k} {len(v):,}' for k, v in corpus.parallel.items.items())}")
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            r = run_build(plan, Path(tmp) / "ours", workers=workers)
            lid = r.manifest["filters"]["langid"]
            ours.append({**r.timings, "rows_out": r.manifest["counts"]["rows"], "texts": lid["texts_detected"],
                         "agree_user": lid["user:agreement"], "agree_bot": lid["assistant:agreement"]})
            gc.collect()
            peer.append(naive_build(corpus, langs, Path(tmp) / "naive.jsonl"))
            gc.collect()
            o, p = ours[-1], peer[-1]
            print(f"run {rep + 1}: ours build {o['build_s']:.2f}s (language ID {o['langid_s']:.2f}s for "
                  f"{o['texts']:,} distinct texts = {o['texts'] / o['langid_s']:,.0f} texts/s; rest "
                  f"{o['build_s'] - o['langid_s']:.2f}s), write {o['write_s']:.2f}s, {o['rows_out']:,} rows | "
                  f"naive build {p['build_s']:.2f}s (language ID {p['langid_s']:.2f}s for {p['texts']:,} texts = "
                  f"{p['texts'] / p['langid_s']:,.0f} texts/s), write {p['write_s']:.2f}s, {p['rows_out']:,} rows")
            e2e = (p["build_s"] + p["write_s"]) / (o["build_s"] + o["write_s"])
            cpu = (p["build_cpu_s"] + p["write_cpu_s"]) / (o["build_cpu_s"] + o["write_cpu_s"])
            print(f"run {rep + 1}: end to end peer/ours wall {e2e:.2f}x, CPU {cpu:.2f}x (ours CPU build "
                  f"{o['build_cpu_s']:.2f}s [of it language-ID worker {o.get('langid_worker_cpu_s', 0):.2f}s for "
                  f"{o.get('langid_worker_texts', 0):,} texts, {o.get('langid_worker_pauses', 0)} pauses] + write "
                  f"{o['write_cpu_s']:.2f}s; peer CPU build "
                  f"{p['build_cpu_s']:.2f}s + write {p['write_cpu_s']:.2f}s); load average {os.getloadavg()[0]:.2f}")
    best_o = min(ours, key=lambda x: x["build_s"])
    best_p = min(peer, key=lambda x: x["build_s"])
    print("\n| | ours | naive peer | peer / ours |")
    print("|---|---|---|---|")
    print(f"| build (generate + filter), best of {args.repeats} | {best_o['build_s']:.2f} s | "
          f"{best_p['build_s']:.2f} s | {best_p['build_s'] / best_o['build_s']:.2f}x |")
    print(f"| language-ID time | {best_o['langid_s']:.2f} s | {best_p['langid_s']:.2f} s | "
          f"{best_p['langid_s'] / best_o['langid_s']:.2f}x |")
    print(f"| build without language ID | {best_o['build_s'] - best_o['langid_s']:.2f} s | "
          f"{best_p['build_s'] - best_p['langid_s']:.2f} s | "
          f"{(best_p['build_s'] - best_p['langid_s']) / (best_o['build_s'] - best_o['langid_s']):.2f}x |")
    print(f"| write JSONL | {best_o['write_s']:.2f} s | {best_p['write_s']:.2f} s | "
          f"{best_p['write_s'] / best_o['write_s']:.2f}x |")
    e2e_o = min(o["build_s"] + o["write_s"] for o in ours)
    e2e_p = min(p["build_s"] + p["write_s"] for p in peer)
    print(f"| end to end (build + filters + write), best of {args.repeats} | {e2e_o:.2f} s | {e2e_p:.2f} s | "
          f"**{e2e_p / e2e_o:.2f}x** |")
    cpu_o = min(o["build_cpu_s"] + o["write_cpu_s"] for o in ours)
    cpu_p = min(p["build_cpu_s"] + p["write_cpu_s"] for p in peer)
    print(f"| end to end CPU time, best of {args.repeats} | {cpu_o:.2f} s | {cpu_p:.2f} s | {cpu_p / cpu_o:.2f}x |")
    print(f"| rows written | {best_o['rows_out']:,} | {best_p['rows_out']:,} | |")
    print(f"| texts through language ID | {best_o['texts']:,} (memoized) | {best_p['texts']:,} | |")
    print(f"| language-ID agreement user / assistant | {best_o['agree_user']:.4f} / {best_o['agree_bot']:.4f} | | |")
    print(f"\ngoal: end to end >= 1.5x the naive loop on CPU time -> {'met' if cpu_p / cpu_o >= 1.5 else 'NOT met'} "
          f"({cpu_p / cpu_o:.2f}x CPU, {e2e_p / e2e_o:.2f}x wall; ours with {workers} process"
          f"{'es' if workers > 1 else ''}, the peer with 1; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
