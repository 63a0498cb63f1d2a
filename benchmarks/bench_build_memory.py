"""Benchmark: peak memory and throughput of `crosstune data build` as the input grows (streaming builds).

The input is the real Alpaca en/zh (../shared) scaled to N rows: row j is Alpaca row j mod 52,002 with id
"k-i" and, for copies k >= 1, " (k)" appended to the input, so copies are distinct rows (else exact dedup
would drop them and nothing would reach the writer). Each size is built by a real `crosstune data build`
subprocess under `/usr/bin/time -v` (peak RSS = "Maximum resident set size"):

- `monolingual` over the English side, `total: all`, default filters (length, exact dedup, language ID with
  pycld2), shuffled: N rows in, about N rows out;
- `--crossin`: CrossIn en/zh base + en2x + x2en + translate, N = all (4N rows out).

Peak RSS is the build process's; with the default 2 workers the language-ID worker process's own peak (a
separate, small process) is printed beside it (`--workers 1`: none).

    python benchmarks/bench_build_memory.py --sizes 125000 250000 500000 1000000 [--baseline-src DIR]

`--baseline-src` runs the same builds with another checkout's `src` (e.g. the release before streaming) in the
same run. Inputs are written to a temporary folder (never the repository) unless `--inputs` names one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca_chinese_parallel" / "alpaca_en_zh_52k_v3.jsonl.gz"


def make_input(path: Path, n: int) -> Path:
    if path.exists():
        return path
    rows = [json.loads(line) for line in gzip.open(ALPACA, "rt", encoding="utf-8")]
    tmp = path.with_suffix(".partial")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as f:
        for j in range(n):
            k, i = divmod(j, len(rows))
            r = dict(rows[i], id=f"{k}-{i}")
            if k:
                for lang in ("en", "zh"):
                    r[f"{lang}_input"] = (r[f"{lang}_input"] + f" ({k})").lstrip()
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def recipe(path: Path, data: Path, crossin: bool) -> Path:
    src = lambda lang: {"language": lang, "path": str(data), "format": "alpaca", "prefix": f"{lang}_",  # noqa: E731
                        "id_field": "id"}
    if crossin:
        cfg = {"name": "crossin", "seed": 0, "sources": [src("en"), src("zh")],
               "recipe": {"languages": ["en", "zh"], "modes": {"base": "all", "en2x": "all", "x2en": "all",
                                                               "translate": "all"}}}
    else:
        cfg = {"name": "monolingual", "seed": 0, "sources": [src("en")], "recipe": {"language": "en", "total": "all"}}
    path.write_text(json.dumps(cfg))
    return path


def run(recipe_path: Path, out: Path, src: str | None, workers: int | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if src:
        env["PYTHONPATH"] = src
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", "from crosstune.cli import main; main()",
           "data", "build", str(recipe_path), "--out", str(out)] + (["--workers", str(workers)] if workers else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"build failed ({r.returncode}):\n{r.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    parts = [float(x) for x in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    timing = re.search(r"time: load ([\d.]+)s, build ([\d.]+)s \(language ID ([\d.]+)s\), write ([\d.]+)s", r.stderr)
    worker = re.search(r"language-ID worker process: ([\d,]+) texts, ([\d.]+)s CPU, peak RSS (\d+) MB", r.stderr)
    manifest = json.loads((out / "manifest.json").read_text())
    return {"rss_mb": rss_kb / 1024, "wall_s": seconds, "rows_out": manifest["counts"]["rows"],
            "worker": (int(worker.group(1).replace(",", "")), float(worker.group(2)), int(worker.group(3)))
            if worker else None,
            "stages": tuple(float(x) for x in timing.groups()) if timing else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[125_000, 250_000, 500_000, 1_000_000])
    ap.add_argument("--inputs", type=Path, default=None, help="folder for the scaled inputs (default: a temp dir)")
    ap.add_argument("--baseline-src", default=None, help="another checkout's src/ to compare in the same run")
    ap.add_argument("--baseline-only", action="store_true", help="with --baseline-src: skip the streaming builds")
    ap.add_argument("--crossin", action="store_true", help="CrossIn en/zh all modes instead of monolingual")
    ap.add_argument("--workers", type=int, default=None, help="`--workers` of the builds (default: the build's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = args.inputs or Path(tmp)
        inputs.mkdir(parents=True, exist_ok=True)
        sides = [("streaming", None)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])
        if args.baseline_only:
            sides = sides[1:]
        print("| input rows | build | peak RSS | wall | input rows/s | rows out | load / build (LID) / write s "
              "| language-ID worker: texts, CPU, peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for n in args.sizes:
            data = make_input(inputs / f"alpaca_{n}.jsonl.gz", n)
            rec = recipe(Path(tmp) / f"recipe_{n}.json", data, args.crossin)
            for label, src in sides:
                out = Path(tmp) / f"out_{label}_{n}"
                r = run(rec, out, src, args.workers if src is None else None)
                st = "/".join(f"{x:.1f}" for x in r["stages"]) if r["stages"] else ""
                wk = r["worker"]
                wk = f"{wk[0]:,}, {wk[1]:.1f} s, {wk[2]} MB" if wk else "none"
                print(f"| {n:,} | {label} | {r['rss_mb']:,.0f} MB | {r['wall_s']:.1f} s | {n / r['wall_s']:,.0f} | "
                      f"{r['rows_out']:,} | {st} | {wk} |", flush=True)
                subprocess.run(["rm", "-rf", str(out)])


if __name__ == "__main__":
    main()
