"""Run a recipe config: sources -> recipe -> filter blocks -> `train.jsonl`, `exclusions.jsonl`, `manifest.json`.

Rows and exclusions stream to disk as they pass; the seeded shuffle is an external pass (`data.spool`), so
memory does not grow with the number of rows written.

Everything is checked before work starts (config schema, recipe params, languages the sources lack); volumes
are checked against the loaded corpus before any row is made. The same config and seed give the same bytes;
timings are returned, never written, for that reason.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crosstune.config import Seed, StrictModel, apply_overrides, config_hash, read_yaml, validate
from crosstune.data.blocks import ExclusionSink, Quota, run_blocks
from crosstune.data.filters import FiltersConfig, make_filters
from crosstune.data.langid_pool import default_workers
from crosstune.data.build_encode import encode_row
from crosstune.data.recipes import get_recipe
from crosstune.data.recipes.base import Budgeted
from crosstune.data.recipes.sources import SourceSpec, load_corpus, source_paths
from crosstune.data.spool import RowSpool
from crosstune.errors import CrosstuneError
from crosstune.languages import normalize
from crosstune.paths import Lookup


class BuildConfig(StrictModel):
    name: str
    seed: Seed = 0
    sources: list[SourceSpec] = []
    recipe: dict[str, Any] = {}
    filters: FiltersConfig = FiltersConfig()
    shuffle: bool = True


@dataclass
class Plan:
    """A validated build: config, recipe and its params, where relative paths resolve (crosstune.paths)."""

    config: BuildConfig
    params: Any
    source: str
    lookup: Lookup = field(default_factory=Lookup)

    @property
    def recipe(self):
        return get_recipe(self.config.name)


def plan_build(path: str | Path, overrides: list[str] | None = None, seed: int | None = None,
               data_root: str | Path | None = None) -> Plan:
    """`data_root`: `--data-root` (None: `$CROSSTUNE_DATA`), where relative source paths are looked up first."""
    data = apply_overrides(read_yaml(path), overrides or [])
    if seed is not None:
        data["seed"] = seed
    cfg = validate(BuildConfig, data, str(path))
    recipe = get_recipe(cfg.name, f"{path}: field 'name'")
    params = validate(recipe.params, data.get("recipe") or cfg.recipe, f"{path}: recipe")  # as read: lines kept
    if recipe.uses_sources:
        if not cfg.sources:
            raise CrosstuneError(f"{path}: recipe {cfg.name!r} needs `sources:` (one entry per language)")
        have = {normalize(s.language) for s in cfg.sources}
        lacking = [lang for lang in recipe.languages(params) if lang not in have]
        if lacking:
            raise CrosstuneError(f"{path}: recipe asks for {', '.join(lacking)} but sources only have "
                                 f"{', '.join(sorted(have))}")
    elif cfg.sources:
        raise CrosstuneError(f"{path}: recipe {cfg.name!r} reads its own files (recipe.corpora); remove `sources:`")
    plan = Plan(cfg, params, str(path), Lookup(path, data_root))
    for fld, p in input_paths(plan):  # a missing file is a config error too: say so before loading anything
        plan.lookup(p, fld)
    return plan


def input_paths(plan: Plan) -> list[tuple[str, str]]:
    """(field, raw path) of every input file the recipe names."""
    from crosstune.data.recipes.translation import corpus_paths

    return source_paths(plan.config.sources) + (corpus_paths(plan.params) if hasattr(plan.params, "corpora") else [])


@dataclass
class BuildResult:
    manifest: dict
    timings: dict[str, float]
    out_dir: Path


class Counts:
    """Rows per mode, language pair and both, counted as rows stream past."""

    def __init__(self) -> None:
        self.rows = 0
        self.by: Counter = Counter()  # (mode, instruction language, response language)

    def add(self, meta: dict) -> None:
        self.rows += 1
        self.by[meta["mode"], meta["instruction_language"], meta["response_language"]] += 1

    def to_dict(self) -> dict:
        modes, pairs, both = Counter(), Counter(), Counter()
        for (mode, il, rl), n in self.by.items():
            modes[mode] += n
            pairs[f"{il}->{rl}"] += n
            both[f"{mode}:{il}->{rl}"] += n
        return {"rows": self.rows, "per_mode": dict(sorted(modes.items())),
                "per_language_pair": dict(sorted(pairs.items())), "per_mode_and_pair": dict(sorted(both.items()))}


@contextmanager
def gc_paused():
    """Rows are acyclic, so the cyclic GC only burns time re-scanning the loaded corpus on every allocation
    burst (CrossIn row generation: 8.4 s with it, 2.5 s without); pause it for the build, restore it after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_build(plan: Plan, out_dir: str | Path, workers: int | None = None) -> BuildResult:
    """Build `plan` into `out_dir`. `workers` processes (default `default_workers()`: 2 with 2+ free cores)
    share the work: with 2+, language ID runs in `workers - 1` worker processes beside the main one. The bytes
    written do not depend on it; it is a run setting, not part of the config (nor of its hash)."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise CrosstuneError(f"workers must be at least 1, got {workers}")
    with gc_paused():
        return _run_build(plan, out_dir, workers)


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the language-ID workers once closed)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_build(plan: Plan, out_dir: str | Path, workers: int) -> BuildResult:
    cfg, recipe = plan.config, plan.recipe
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    log: list[str] = []
    inputs: list[dict] = []
    rng = np.random.default_rng(cfg.seed)
    corpus = data = None
    if recipe.uses_sources:
        corpus = load_corpus(cfg.sources, plan.lookup)
        inputs = corpus.inputs
        rows_iter = recipe.build(plan.params, corpus, rng, log)
        corpus_info = {"languages": corpus.languages,
                       "items": {lang: len(v) for lang, v in corpus.parallel.items.items()},
                       "validation": _report(corpus.parallel.report)}
    else:
        data, inputs = recipe.load(plan.params, plan.lookup)
        rows_iter = recipe.build(plan.params, data, rng, log)
        corpus_info = {name: {lang: len(v) for lang, v in texts.items()} for name, texts in data.items()}
    timings["load_s"] = time.perf_counter() - t0

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = {name: out / f"{name}.partial" for name in ("train.jsonl", "exclusions.jsonl", "manifest.json")}
    sink = ExclusionSink(partial["exclusions.jsonl"])
    spool = RowSpool(out / "train.jsonl.spool")
    blocks = []
    try:
        t1, c1, k1 = time.perf_counter(), time.process_time(), _children_cpu()
        blocks = make_filters(cfg.filters, recipe.languages(plan.params), workers)
        if isinstance(rows_iter, Budgeted):  # fixed budget: refill filtered rows from the candidate stream
            blocks.append(Quota(rows_iter.quotas))
            rows_iter = rows_iter.rows
        counts = Counts()
        by, lines = counts.by, []
        # kept rows go to disk as they come, as their final bytes (the loop reads to the end: read-ahead is safe)
        for row in run_blocks(blocks, rows_iter, sink, read_ahead=True):
            line = row.line
            if line is None:  # no line, or a block changed the example: encode (and count) the example
                meta = row.example.meta
                by[meta["mode"], meta["instruction_language"], meta["response_language"]] += 1
                lines.append(encode_row(row.example))
            else:
                by[row.key] += 1
                lines.append(line if type(line) is bytes else line.encode())
            if len(lines) >= 4096:
                spool.add_many(lines)
                lines = []
        spool.add_many(lines)
        counts.rows = len(spool)
        sink.close()
        for block in blocks:  # worker processes exit here, so their CPU time is counted below
            block.close()
        timings["build_s"] = time.perf_counter() - t1
        timings["build_cpu_s"] = time.process_time() - c1 + _children_cpu() - k1  # all processes
        for block in blocks:
            if block.name == "langid":
                timings["langid_s"] = getattr(block, "seconds", 0.0)
                timings["langid_worker_cpu_s"] = getattr(block, "worker_seconds", 0.0)
                timings["langid_worker_texts"] = getattr(block, "worker_texts", 0)
                timings["langid_worker_rss_mb"] = getattr(block, "worker_rss_mb", 0.0)
                timings["langid_worker_pauses"] = getattr(block, "worker_pauses", 0)
            if isinstance(block, Quota) and block.shortfall():
                log.append(f"budget not met after filtering (kept/wanted): {block.shortfall()}")
        reports = {b.name: b.report() for b in blocks}
        # the filters' state (dedup keys, language-ID memo) and the corpus are done with: free them before the
        # shuffle allocates its arrays, so the peak is the larger of the two phases, not their sum
        blocks = block = rows_iter = None  # noqa: F841
        corpus = data = _release(corpus if recipe.uses_sources else None)

        t2, c2 = time.perf_counter(), time.process_time()
        order = np.random.default_rng(cfg.seed).permutation(len(spool)) if cfg.shuffle else None
        spool.finish(partial["train.jsonl"], order)
        manifest = {
            "recipe": cfg.name, "seed": cfg.seed, "config_hash": config_hash(cfg), "config_file": plan.source,
            "config": cfg.model_dump(mode="json"), "inputs": inputs, "corpus": corpus_info, "log": log,
            "counts": counts.to_dict(), "filters": reports,
            "exclusions": {"rows": sink.n, "per_reason": sink.counts()},
            "params": _params(plan.params),
        }
        partial["manifest.json"].write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                            encoding="utf-8")
        for name, path in partial.items():  # every file appears complete, or not at all
            os.replace(path, out / name)
        timings["write_s"] = time.perf_counter() - t2
        timings["write_cpu_s"] = time.process_time() - c2
    except BaseException:
        for block in blocks or []:
            block.close()
        sink.close()
        spool.discard()
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    finally:
        _release(corpus if recipe.uses_sources else None)
    return BuildResult(manifest, timings, out)


def _release(corpus) -> None:
    if corpus is not None:
        corpus.parallel.close()


def _params(params) -> dict:
    return params.model_dump(mode="json") if isinstance(params, StrictModel) else {}


def _report(report) -> dict:
    return {kind: {lang: len(ids) for lang, ids in getattr(report, kind).items() if ids}
            for kind in ("missing", "duplicates", "empty")}


def build(path: str | Path, out_dir: str | Path, *, seed: int | None = None,
          overrides: list[str] | None = None, workers: int | None = None) -> BuildResult:
    """Validate, then build. The one entry point for the CLI and Python users."""
    return run_build(plan_build(path, overrides, seed), out_dir, workers)
