"""Benchmark: our log-likelihood scorer vs lm-evaluation-harness on the same Cross-MMLU prompts, in one run.

Both score the same (prompt, option) pairs with the same model (the default SmolLM2-135M, HF backend, same dtype and
batch size) and pick the option with the highest summed log-probability. lm-eval runs through `simple_evaluate` on a
task YAML generated here (`dataset_path: json` over a JSONL written here; offline). Timing covers only the
log-likelihood phase: lm-eval's start-up (imports, model load, task building, dataset load) and our model load are
excluded by timing each `loglikelihood` call from the outside (a small `HFLM` subclass that wraps the call;
no lm-eval code is changed). Both get the same warm-up (the first 2 items). The two run interleaved in rounds over
the same items, so both see the same load on a shared machine; wall and process CPU time are both reported.
`--cache` also scores every round through the call cache as `eval run` does (`CachedBackend` on a fresh file: each
request is built, hashed, computed and stored), right after the uncached pass, and reports the cache's cost.

    python benchmarks/bench_loglik.py --limit 150 --languages en          # ~10 min on 2 busy cores
    python benchmarks/bench_loglik.py --limit 20 --languages en,zh,es,vi  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from crosstune.eval.scorers import LoglikScorer  # noqa: E402
from crosstune.eval.tasks import load_items, load_task  # noqa: E402
from crosstune.models.backends.hf import HFBackend  # noqa: E402
from crosstune.models.loading import resolve_model  # noqa: E402

TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: choices
doc_to_target: answer
target_delimiter: "{delim}"
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
metadata: {{version: 1.0}}
"""


def write_lmeval_task(folder: Path, rows: list[dict], delimiter: str) -> str:
    name = "crosstune_bench_cross_mmlu"
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (folder / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=data, delim=delimiter), encoding="utf-8")
    return name


class LmEvalRunner:
    """lm-eval's HF model, loaded once; each `run(doc_ids)` evaluates those docs of the generated task."""

    def __init__(self, model_path: str, folder: Path, rows: list[dict], warm: list, args):
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        class TimedHFLM(HFLM):  # records wall and CPU time of the log-likelihood phase only
            wall = cpu = 0.0

            def loglikelihood(self, requests, disable_tqdm: bool = False):
                w, c = time.perf_counter(), time.process_time()
                out = super().loglikelihood(requests, disable_tqdm=True)
                self.wall += time.perf_counter() - w
                self.cpu += time.process_time() - c
                return out

        self.lm = TimedHFLM(pretrained=model_path, dtype=args.dtype, batch_size=args.batch_size, device="cpu")
        self.lm.loglikelihood([Instance("loglikelihood", {}, (c, o), 0) for c, o in warm])  # warm-up
        self.lm.wall = self.lm.cpu = 0.0
        self.name = write_lmeval_task(folder, rows, args.delimiter)
        self.tm = TaskManager(include_path=str(folder))
        self.batch_size = args.batch_size

    def run(self, doc_ids: list[int]) -> dict[int, list[float]]:
        from lm_eval import simple_evaluate

        res = simple_evaluate(model=self.lm, tasks=[self.name], task_manager=self.tm, samples={self.name: doc_ids},
                              log_samples=True, batch_size=self.batch_size, random_seed=0)
        return {s["doc_id"]: [float(r[0]) for r in s["filtered_resps"]] for s in res["samples"][self.name]}


def matmul_peak(n: int = 2048, reps: int = 5) -> tuple[float, float]:
    """Best-of-`reps` fp32 GFLOP/s of an n^3 matmul with the run's thread count (this CPU's practical peak), per
    wall second and per CPU second of this process (on a shared machine the second is the stable one)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    wall = cpu = 0.0
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        a @ b
        dt, dc = time.perf_counter() - t, time.process_time() - c
        wall, cpu = max(wall, 2 * n ** 3 / dt / 1e9), max(cpu, 2 * n ** 3 / max(dc, 1e-9) / 1e9)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--languages", default="en")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's choice)")
    ap.add_argument("--rounds", type=int, default=5, help="interleave the two scorers in this many rounds")
    ap.add_argument("--out", default=None, help="write the measurements as JSON here")
    ap.add_argument("--cache", action="store_true", help="score ours through the call cache as `eval run` does "
                    "(a fresh cache file: every request misses and is stored, as in a first run)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_task("cross_mmlu")
    args.delimiter = cfg.loglik.delimiter
    langs = args.languages.split(",")
    items = [it[lang] for it in load_items(cfg, langs, limit=args.limit) for lang in langs]
    scorer = LoglikScorer(cfg)
    rows = [{"id": f"{it.id}|{it.language}", "prompt": it.prompt, "answer": it.answer_index,
             "choices": [c[len(args.delimiter):] for c in it.continuations]} for it in items]
    warm = [(it.prompt, c) for it in items[:2] for c in it.continuations]  # text (lm-eval encodes it)
    n_req = sum(len(r["choices"]) for r in rows)
    print(f"{len(items)} questions ({args.limit} items x {langs}), {n_req} option requests, "
          f"{args.dtype}, batch {args.batch_size}", flush=True)

    model_path = resolve_model(args.model)
    ours = HFBackend(model_path, dtype=args.dtype, batch_size=args.batch_size)
    scorer.bind(ours)  # requests carry the one renderer's token ids, as in `eval run`
    ours.loglikelihood([r for it in items[:2] for r in scorer.requests(it)])  # warm-up
    ours.loglik_stats.update(tokens=0, head_positions=0)
    cached = None
    if args.cache:  # ours again through the call cache, in the same rounds; a fresh file: every request misses
        from crosstune.models.cache import CachedBackend, CallCache

        cache_dir = tempfile.TemporaryDirectory()
        cached = CachedBackend(ours, CallCache(Path(cache_dir.name) / "calls.sqlite"))
    n_params = sum(p.numel() for p in ours.model.parameters())
    tmp = tempfile.TemporaryDirectory()
    lmeval = LmEvalRunner(model_path, Path(tmp.name), rows, warm, args)
    # Interleave the two in rounds over the same items, so both see the same (shared, noisy) machine load.
    ours_ll: list[list[float]] = []
    lm_ll: list[list[float]] = []
    ours_wall = ours_cpu = cached_wall = cached_cpu = cached_diff = 0.0
    step = -(-len(items) // args.rounds)
    for start in range(0, len(items), step):
        ids = list(range(start, min(start + step, len(items))))
        w, c = time.perf_counter(), time.process_time()
        reqs = [scorer.requests(items[i]) for i in ids]
        flat = ours.loglikelihood([r for rs in reqs for r in rs])
        ours_wall += time.perf_counter() - w
        ours_cpu += time.process_time() - c
        if cached is not None:  # the same requests as `eval run` sends them: built, hashed, scored, stored
            stats = dict(ours.loglik_stats)
            w, c = time.perf_counter(), time.process_time()
            again = cached.loglikelihood([r for i in ids for r in scorer.requests(items[i])])
            cached_wall += time.perf_counter() - w
            cached_cpu += time.process_time() - c
            ours.loglik_stats.update(stats)  # FLOPs count the uncached pass only
            cached_diff = max([cached_diff] + [abs(x.logprob - y.logprob) for x, y in zip(again, flat)])
        k = 0
        for rs in reqs:
            ours_ll.append([x.logprob for x in flat[k:k + len(rs)]])
            k += len(rs)
        got = lmeval.run(ids)
        lm_ll += [got[i] for i in ids]
        print(f"  round {start // step + 1}: {len(ids)} questions; crosstune {ours_wall:.1f} s"
              + (f" (through the cache {cached_wall:.1f} s)" if cached is not None else "")
              + f", lm-eval {lmeval.lm.wall:.1f} s so far", flush=True)
    tmp.cleanup()
    peak, peak_cpu = matmul_peak()
    flops = 2 * n_params * ours.loglik_stats["tokens"]  # 2 x params per forwarded token
    lm_wall, lm_cpu = lmeval.lm.wall, lmeval.lm.cpu
    n = len(items)
    print(f"crosstune: {ours_wall:.1f} s wall ({ours_cpu:.1f} s CPU), {n / ours_wall:.2f} questions/s", flush=True)
    print(f"lm-eval:   {lm_wall:.1f} s wall ({lm_cpu:.1f} s CPU), {n / lm_wall:.2f} questions/s "
          "(log-likelihood phase)", flush=True)

    def argmax(v):
        return max(range(len(v)), key=lambda i: (v[i], -i))

    agree = sum(argmax(a) == argmax(b) for a, b in zip(ours_ll, lm_ll))
    diff = max(abs(x - y) for a, b in zip(ours_ll, lm_ll) for x, y in zip(a, b))
    acc_ours = sum(argmax(a) == r["answer"] for a, r in zip(ours_ll, rows)) / len(rows)
    acc_lm = sum(argmax(b) == r["answer"] for b, r in zip(lm_ll, rows)) / len(rows)
    result = {"questions": n, "option_requests": n_req, "languages": langs, "dtype": args.dtype,
              "batch_size": args.batch_size, "rounds": args.rounds, "torch_threads": torch.get_num_threads(),
              "crosstune_wall_s": round(ours_wall, 2), "crosstune_cpu_s": round(ours_cpu, 2),
              "lmeval_wall_s": round(lm_wall, 2), "lmeval_cpu_s": round(lm_cpu, 2),
              "crosstune_qps": round(n / ours_wall, 3), "lmeval_qps": round(n / lm_wall, 3),
              "speedup_wall": round(lm_wall / ours_wall, 2), "speedup_cpu": round(lm_cpu / ours_cpu, 2),
              "same_choice": agree, "agreement": round(agree / len(items), 4),
              "max_abs_logprob_diff": round(diff, 5), "acc_crosstune": round(acc_ours, 4), "acc_lmeval": round(acc_lm, 4),
              "params": n_params, "forwarded_tokens": ours.loglik_stats["tokens"],
              "head_positions": ours.loglik_stats["head_positions"],
              "crosstune_gflops_wall": round(flops / ours_wall / 1e9, 2), "crosstune_gflops_cpu": round(flops / ours_cpu / 1e9, 2),
              "matmul_peak_gflops_wall": round(peak, 2), "matmul_peak_gflops_cpu": round(peak_cpu, 2),
              "peak_share_wall": round(flops / ours_wall / 1e9 / peak, 3),
              "peak_share_cpu": round(flops / ours_cpu / 1e9 / peak_cpu, 3)}
    print(f"speed-up {result['speedup_wall']}x wall, {result['speedup_cpu']}x CPU; same chosen option on {agree}/{len(items)} "
          f"({100 * agree / len(items):.1f}%); max |logprob diff| {diff:.2e}; acc {acc_ours:.3f} vs {acc_lm:.3f}")
    print(f"scorer: {result['crosstune_gflops_wall']} GFLOP/s per wall second, {result['crosstune_gflops_cpu']} per CPU "
          f"second = {100 * result['peak_share_wall']:.0f}% / {100 * result['peak_share_cpu']:.0f}% of this CPU's fp32 "
          f"matmul peak measured the same way ({result['matmul_peak_gflops_wall']} / {result['matmul_peak_gflops_cpu']} "
          f"GFLOP/s, {torch.get_num_threads()} threads, 2048^3)")
    if cached is not None:
        result.update(crosstune_cached_wall_s=round(cached_wall, 2), crosstune_cached_cpu_s=round(cached_cpu, 2),
                      speedup_cached_wall=round(lm_wall / cached_wall, 2), speedup_cached_cpu=round(lm_cpu / cached_cpu, 2),
                      cache_overhead_wall=round(cached_wall / ours_wall - 1, 4),
                      cache_overhead_cpu=round(cached_cpu / ours_cpu - 1, 4), cached_max_abs_diff=cached_diff)
        print(f"through the call cache: {cached_wall:.1f} s wall ({cached_cpu:.1f} s CPU): speed-up "
              f"{result['speedup_cached_wall']}x wall, {result['speedup_cached_cpu']}x CPU; cost of the cache "
              f"{100 * result['cache_overhead_wall']:+.1f}% wall, {100 * result['cache_overhead_cpu']:+.1f}% CPU; "
              f"max |logprob diff| vs uncached {cached_diff:.1e}")
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    sys.exit(0 if agree == len(items) else 1)


if __name__ == "__main__":
    main()
