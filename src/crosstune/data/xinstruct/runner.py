"""Run the X-Instruction pipeline: read+segment -> generate -> refine -> diversify -> write, and the outputs
`train.jsonl` (the `data build` row format), `excluded.jsonl` (every dropped item with block and reason),
`manifest.json` (config, inputs, counts per block, cluster sizes), `candidates.jsonl` (every generated instruction,
raw and parsed, with its drop reason), `grades.jsonl` (every grader answer) and `run.json` (this run's seconds and
model calls).

Resumable from the runner: every model call goes through the shared call cache as it completes, so a killed run
repeats the blocks without repeating a call, and a rerun of an unchanged config makes none. The manifest holds
only what the config and inputs decide (same config, same bytes); timings and call counts go to `run.json`.

Under `accelerate launch` or `torchrun` every process reads the same passages; the generate and refine phases
split their model calls over the processes (`ModelHandle.generate_groups`: each call the one a single process
makes, so the same answers), and every process gets every answer; after refine, process 0 alone diversifies
(embedding, k-means) and writes, and `run.json` sums the calls over the processes. The outputs are the
one-process outputs byte for byte.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from crosstune.config import apply_overrides, config_hash, read_yaml, validate
from crosstune.console import console
from crosstune.data.blocks import Block, ExclusionSink, Row
from crosstune.data.io import dumps_row
from crosstune.data.xinstruct.config import XInstructConfig, load_prompt
from crosstune.data.xinstruct.diversify import Diversify
from crosstune.data.xinstruct.generate import CandidateChecks, Generate
from crosstune.data.xinstruct.model import ModelHandle, check_loglik_backend
from crosstune.data.xinstruct.read import ReadSegment, passage_filters, read_documents
from crosstune.data.xinstruct.refine import Refine
from crosstune.data.xinstruct.write import ToSFT
from crosstune.distributed import state
from crosstune.errors import CrosstuneError
from crosstune.paths import Lookup


@dataclass
class Plan:
    config: XInstructConfig
    source: str
    lookup: Lookup
    prompts: dict[str, str] = field(default_factory=dict)


def plan_xinstruct(path: str | Path, overrides: list[str] | None = None, data_root: str | Path | None = None) -> Plan:
    """Validate the config, its input paths and prompts before any work; relative paths resolve under `data_root`
    (`--data-root`, None: `$CROSSTUNE_DATA`), next to the config, then in the working directory."""
    cfg = validate(XInstructConfig, apply_overrides(read_yaml(path), overrides or []), str(path))
    if not cfg.sources:
        raise CrosstuneError(f"{path}: `sources:` is empty; expected at least one {{language, path}}")
    lookup = Lookup(path, data_root)
    for i, s in enumerate(cfg.sources):
        lookup(s.path, f"sources.{i}.path")
        if s.doc_ids:
            lookup(s.doc_ids, f"sources.{i}.doc_ids")
    prompts = {"generate": load_prompt(cfg.generate.prompt, lookup, "generate.prompt"),
               "grade": load_prompt(cfg.refine.prompt, lookup, "refine.prompt"),
               "rewrite": load_prompt(cfg.refine.rewrite_prompt, lookup, "refine.rewrite_prompt"),
               "response": load_prompt(cfg.refine.response_prompt, lookup, "refine.response_prompt")}
    for key, slot in (("generate", "{text}"), ("grade", "{response}"), ("rewrite", "{response}")):
        if slot not in prompts[key]:
            raise CrosstuneError(f"{path}: the {key} prompt has no {slot} slot")
    if cfg.refine.enabled and cfg.refine.mode == "loglik":
        judge = "model.judge" if cfg.model.judge else "model.backend"
        check_loglik_backend(cfg.model.judge or cfg.model.backend, f"{path}: refine.mode loglik grades with {judge}")
    return Plan(cfg, str(path), lookup, prompts)


@contextmanager
def _progress(label: str, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=total == 0 or not state().is_main) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@dataclass
class Step:
    """One block's share of the run: wall seconds, seconds waiting on the model, and model calls."""

    name: str
    seconds: float = 0.0
    model_seconds: float = 0.0
    calls: int = 0
    hits: int = 0

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "model_seconds": round(self.model_seconds, 3),
                "own_seconds": round(self.seconds - self.model_seconds, 3), "calls": self.calls, "hits": self.hits}


def _run_block(steps: dict[str, Step], name: str, model: ModelHandle, blocks: list[Block], rows, sink) -> list[Row]:
    step = steps.setdefault(name, Step(name))
    t0, m0, c0, h0 = time.perf_counter(), model.seconds, model.calls, model.hits
    for b in blocks:
        rows = b.run(rows, sink)
    rows = list(rows)
    step.seconds += time.perf_counter() - t0
    step.model_seconds += model.seconds - m0
    step.calls += model.calls - c0
    step.hits += model.hits - h0
    return rows


@dataclass
class XInstructResult:
    manifest: dict
    run: dict
    out_dir: Path
    rows: list[Row]
    primary: bool = True


def run_xinstruct(plan: Plan, out_dir: str | Path, model: ModelHandle | None = None) -> XInstructResult:
    """Run the blocks; under a multi-process launch only process 0 writes and gets the result's manifest and run
    (the others return `primary=False` after refine)."""
    cfg = plan.config
    st = state()
    model = model or ModelHandle(cfg.model)
    separate = cfg.model.judge and cfg.model.judge != cfg.model.backend
    judge = ModelHandle(cfg.model.model_copy(update={"backend": cfg.model.judge, "fingerprint": "auto"})) \
        if separate else model
    sink = ExclusionSink()
    steps: dict[str, Step] = {}
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    sources, inputs = [], []
    for spec in cfg.sources:
        docs, info = read_documents(spec, plan.lookup)
        sources.append((spec, docs))
        inputs.append(info)
    per_source = math.ceil(cfg.limit / len(cfg.sources)) if cfg.limit else 0
    reader = ReadSegment(sources, cfg.segment, per_source, cfg.seed)
    filters = passage_filters(cfg.segment, cfg.languages)
    passages = _run_block(steps, "read", model, [reader, *filters], None, sink)
    steps["read"].seconds = time.perf_counter() - t0  # file reading included
    if st.is_main:
        console.print(f"read: {len(passages):,} passages from {reader.stats['documents']:,} documents "
                      f"({', '.join(cfg.languages)})")

    checks = CandidateChecks(cfg.generate)
    bs = cfg.model.batch_size
    with _progress("generate", len(passages)) as advance:
        gen = Generate(cfg.generate, plan.prompts["generate"], model, bs, checks, advance)
        candidates = _run_block(steps, "generate", model, [gen], passages, sink)
    if st.is_main:
        console.print(f"generate: {len(candidates):,} candidate instructions "
                      f"({steps['generate'].calls:,} model calls{st.tag()}, {steps['generate'].hits:,} from the cache)")

    with _progress("refine", len(candidates)) as advance:
        refine = Refine(cfg.refine, plan.prompts, judge, checks, bs, advance)
        refined = _run_block(steps, "refine", judge, [refine], candidates, sink)
    handles = [model] + ([judge] if judge is not model else [])
    totals = st.sum({"calls": sum(h.calls for h in handles), "hits": sum(h.hits for h in handles),
                     **{f"{k}.{c}": getattr(v, c) for k, v in steps.items() for c in ("calls", "hits")}})
    if not st.is_main:  # process 0 diversifies and writes
        return XInstructResult({}, {}, Path(out_dir), [], primary=False)
    console.print(f"refine: {len(refined):,} pairs kept")

    div = Diversify(cfg.diversify)
    diverse = _run_block(steps, "diversify", model, [div], refined, sink)
    console.print(f"diversify: {len(diverse):,} rows kept from {sum(map(len, div.clusters.values())):,} clusters")

    t_write = time.perf_counter()
    writer = ToSFT(cfg.write)
    rows = list(writer.run(diverse, sink))
    blocks = {"read": [reader, *filters], "generate": [gen], "refine": [refine], "diversify": [div],
              "write": [writer]}
    manifest = {
        "pipeline": "xinstruct", "config_hash": config_hash(cfg), "config_file": plan.source,
        "config": cfg.model_dump(mode="json"), "model": {"backend": cfg.model.backend,
                                                         "fingerprint": model.fingerprint,
                                                         "judge_fingerprint": judge.fingerprint},
        "inputs": inputs,
        "counts": {"documents": reader.stats["documents"], "passages_read": reader.n_out,
                   "passages": len(passages), "candidates": len(candidates), "refined": len(refined),
                   "diversified": len(diverse), "rows": len(rows),
                   "rows_per_language": {k.split(":", 1)[1]: v for k, v in sorted(writer.stats.items())}},
        "blocks": {name: {b.name: b.report() for b in bl} for name, bl in blocks.items()},
        "cluster_sizes": div.clusters,
        "exclusions": {"rows": len(sink.items), "per_reason": sink.counts()},
    }
    out = Path(out_dir)
    _write(out, rows, sink, manifest)
    _atomic(out / "candidates.jsonl", "".join(dumps_row(r) + "\n" for r in gen.records))
    _atomic(out / "grades.jsonl", "".join(dumps_row(r) + "\n" for r in refine.records))
    steps["write"] = Step("write", seconds=time.perf_counter() - t_write)
    for k, v in steps.items():  # the calls of every process
        v.calls, v.hits = totals.get(f"{k}.calls", v.calls), totals.get(f"{k}.hits", v.hits)
    run = {"seconds": round(time.perf_counter() - t_start, 3), "model_calls": totals["calls"],
           "cache_hits": totals["hits"], "blocks": {k: v.to_dict() for k, v in steps.items()},
           "diversify": div.seconds, "processes": st.world}
    _atomic(out / "run.json", json.dumps(run, indent=2) + "\n")
    return XInstructResult(manifest, run, out, rows)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write(out: Path, rows: list[Row], sink: ExclusionSink, manifest: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / "train.jsonl", "".join(dumps_row(r.example.to_dict()) + "\n" for r in rows))
    _atomic(out / "excluded.jsonl", "".join(dumps_row(e.to_dict()) + "\n" for e in sink.items))
    _atomic(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")


def xinstruct(path: str | Path, out_dir: str | Path, overrides: list[str] | None = None) -> XInstructResult:
    """Validate, then run. The one entry point for the CLI and Python users."""
    return run_xinstruct(plan_xinstruct(path, overrides), out_dir)
