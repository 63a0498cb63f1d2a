"""Score one task with one scorer on one backend into one run folder, resumably and optionally across processes.

Per-item predictions are appended to `predictions.jsonl` as the run goes (a killed run resumes and skips finished
items; a half-written last line is dropped); at the end they are rewritten in item order and the summary is
written. `run.json` records the run's identity (model fingerprint, data file hashes, dtype, template, task config
hash, scorer settings); a rerun into the same folder with any of them changed is refused, naming what changed
(`crosstune.eval.rundir`). Under `accelerate launch` (WORLD_SIZE > 1) each process scores every n-th remaining
prompt into its own part file; process 0 merges them, so the result equals a one-process run (`crosstune.distributed`). When the backend is
a `CachedBackend` (as `crosstune.eval.evaluate` builds it), `timing.json` records how many requests reached the
model and how many the call cache answered, summed over processes.

Layout: RUN_DIR/{run.json, predictions.jsonl, summary.json, timing.json}; tables and figures are the report's
(`crosstune.report.evaluation`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from crosstune import distributed
from crosstune.console import console
from crosstune.eval import rundir
from crosstune.eval.identity import run_identity
from crosstune.eval.summary import summarize_rows
from crosstune.eval.tasks import Item, TaskConfig


def _counts(backend) -> tuple[int, int]:
    """(requests sent to the model, requests the call cache answered) so far; (0, 0) for an uncached backend."""
    return int(getattr(backend, "calls", 0) or 0), int(getattr(backend, "hits", 0) or 0)


def _key(row: dict) -> tuple[str, str]:
    return row["id"], row["language"]


def run_task(backend, cfg: TaskConfig, scorer, items: list[dict[str, Item]], out_dir: Path, model: str,
             prompt: str, chunk_size: int = 64, n_boot: int = 1000, seed: int = 0, *, run_dir: Path | None = None,
             data_root=None, extra: dict | None = None) -> dict:
    """Score every (item, language) and summarize; `run_dir` defaults to OUT/<task>/<mode> (`eval consistency`)."""
    st = distributed.state()
    languages = list(items[0]) if items else []
    run_dir = Path(run_dir) if run_dir is not None else Path(out_dir) / cfg.name / scorer.mode
    scorer.bind(backend)
    meta = {"task": cfg.name, "kind": cfg.kind, "mode": scorer.mode, "model": model, "languages": languages,
            "prompt": prompt, "scorer": scorer.settings(), **(extra or {}),
            "identity": run_identity(backend, cfg, languages, data_root, getattr(scorer.render, "resolved", None))}
    if st.is_main:
        rundir.check_run(run_dir, meta)
    st.barrier()
    if not st.is_main:
        rundir.check_run(run_dir, meta, write=False)
    pred_path = run_dir / "predictions.jsonl"
    done = distributed.read_done(pred_path, _key, st, "prediction row")
    todo = [it[lang] for it in items for lang in languages if (it[lang].id, lang) not in done]
    todo.sort(key=lambda it: len(it.prompt), reverse=True)  # similar lengths batch together; deterministic
    mine = distributed.my_share(todo, st)
    if done and st.is_main:
        console.print(f"[dim]{cfg.name}/{scorer.mode}: resuming, {len(done)} done, {len(todo)} to go[/dim]")
    if st.is_main and st.world > 1:
        console.print(f"[dim]{cfg.name}/{scorer.mode}: {distributed.share_line(len(todo), 'prompts', st)}[/dim]")
    calls0, hits0 = _counts(backend)
    t0 = time.perf_counter()
    with distributed.open_rows(pred_path, st) as out:
        for s in range(0, len(mine), chunk_size):
            chunk = mine[s:s + chunk_size]
            reqs = [scorer.requests(it) for it in chunk]
            flat = [r for rs in reqs for r in rs]
            results = backend.generate(flat) if scorer.mode == "generate" else backend.loglikelihood(flat)
            k = 0
            for it, rs in zip(chunk, reqs):
                row = {"id": it.id, "language": it.language, **scorer.score(it, results[k:k + len(rs)]),
                       "gold": it.answer, "gold_index": it.answer_index, "prompt": scorer.sent(rs[0])}
                out.write(row)
                k += len(rs)
            out.flush()
            elapsed = time.perf_counter() - t0
            console.print(f"[dim]{cfg.name}/{scorer.mode}: {s + len(chunk)}/{len(mine)} prompts{st.tag()}, "
                          f"{(s + len(chunk)) / max(elapsed, 1e-9):.1f}/s[/dim]")
    elapsed = time.perf_counter() - t0
    calls, hits = (a - b for a, b in zip(_counts(backend), (calls0, hits0)))
    calls, hits = st.sum({"calls": calls, "hits": hits}).values()
    # item order: the same bytes however the work was split or resumed
    order = [(it[lang].id, lang) for it in items for lang in languages]
    merged = {_key(r): r for r in distributed.merge_parts(pred_path, _key, order, st, out.rows,
                                                          what="prediction row")}
    summary_path = run_dir / "summary.json"
    if st.is_main:
        rows = [[merged[(it[lang].id, lang)] for lang in languages] for it in items]
        summary = summarize_rows(cfg, rows, items, languages, n_boot=n_boot, seed=seed)
        summary.update(task=cfg.name, kind=cfg.kind, mode=scorer.mode, model=model, prompt=prompt,
                       template=scorer.settings().get("template"), skipped_by_filter=getattr(items, "skipped", 0))
        rundir.write_json(summary_path, summary)
        rundir.write_json(run_dir / "timing.json", {
            "prompts_scored": len(todo), "seconds": round(elapsed, 2), "processes": st.world,
            "prompts_per_s": round(len(todo) / elapsed, 3) if todo and elapsed else None,
            "model_calls": calls, "cached_calls": hits})
        if calls or hits:
            console.print(f"[dim]{cfg.name}/{scorer.mode}: model calls {calls}, cached {hits}[/dim]")
    st.barrier()
    return json.loads(summary_path.read_text(encoding="utf-8"))
