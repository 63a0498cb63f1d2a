"""Run one task with one scorer on one backend, resumably and optionally across processes.

Per-item predictions are appended to `predictions.jsonl` as the run goes (a killed run resumes and skips finished
items; a half-written last line is dropped); at the end they are rewritten in item order and the summary, a
Markdown table and figures are written. `run.json` records the run's identity (model fingerprint, data file
hashes, dtype, template, task config hash, scorer settings); a rerun into the same folder with any of them changed
is refused, naming what changed. Under `accelerate launch` (WORLD_SIZE > 1) each process scores every n-th
remaining prompt into its own part file; process 0 merges them, so the result equals a one-process run.

Layout: RUN_DIR/{run.json, predictions.jsonl, summary.json, table.md, timing.json, figures}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from crosstune.console import console
from crosstune.data.io import dumps_row
from crosstune.errors import CrosstuneError
from crosstune.eval.identity import run_identity
from crosstune.eval.summary import summarize_rows
from crosstune.eval.tasks import Item, TaskConfig
from crosstune.report.consistency import write_task_report


class _Single:
    process_index, num_processes = 0, 1

    def wait_for_everyone(self) -> None:
        pass


def process_state():
    """accelerate's PartialState under a multi-process launch (gloo on CPU), else a one-process stand-in."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Single()
    from accelerate import PartialState

    return PartialState(cpu=True)


def _sent(request) -> str:
    """The text the model received (rendered with the run's template): a generation prompt, or a log-likelihood
    context (a whole-sentence cloze request has none: its first filled sentence)."""
    prompt = getattr(request, "prompt", None)
    if prompt is not None:
        return prompt if isinstance(prompt, str) else str(prompt)
    return request.context or request.continuation


def read_predictions(path: Path, repair: bool = False) -> list[dict]:
    """Rows of a predictions file. A last line without its newline (a killed write) is dropped, and with `repair`
    cut from the file; any other malformed line is an error naming the file and line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    rows = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
        except ValueError:
            if i == len(lines):  # the unterminated tail of an interrupted write
                console.print(f"[yellow]{path}:{i}: dropping a half-written last line[/]")
                if repair:
                    with open(path, "r+b") as f:
                        f.truncate(len(data) - len(raw))
                break
            raise CrosstuneError(f"{path}:{i}: malformed prediction row; delete the file to start this run over") from None
    return rows


def _check_meta(run_dir: Path, meta: dict, primary: bool) -> None:
    meta_path = run_dir / "run.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        if old != meta:
            changed = _diff(old, meta)
            raise CrosstuneError(f"{meta_path}: an earlier run with different settings is in this folder "
                                 f"(changed: {', '.join(changed)}); use another --out or delete it")
    elif primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(meta_path)


def _diff(old, new, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def run_task(backend, cfg: TaskConfig, scorer, items: list[dict[str, Item]], out_dir: Path, model: str,
             prompt: str, chunk_size: int = 64, n_boot: int = 1000, seed: int = 0, *, run_dir: Path | None = None,
             data_root=None, extra: dict | None = None) -> dict:
    """Score every (item, language) and summarize; `run_dir` defaults to OUT/<task>/<mode> (`eval consistency`)."""
    state = process_state()
    primary = state.process_index == 0
    languages = list(items[0]) if items else []
    run_dir = Path(run_dir) if run_dir is not None else Path(out_dir) / cfg.name / scorer.mode
    scorer.bind(backend)
    meta = {"task": cfg.name, "kind": cfg.kind, "mode": scorer.mode, "model": model, "languages": languages,
            "prompt": prompt, "scorer": scorer.settings(), **(extra or {}),
            "identity": run_identity(backend, cfg, languages, data_root, getattr(scorer.render, "resolved", None))}
    if primary:
        _check_meta(run_dir, meta, True)
    state.wait_for_everyone()
    if not primary:
        _check_meta(run_dir, meta, False)
    pred_path = run_dir / "predictions.jsonl"
    parts = sorted(run_dir.glob("predictions.part*.jsonl"))
    done = {(r["id"], r["language"]): r for p in [pred_path, *parts] for r in read_predictions(p, repair=primary)}
    state.wait_for_everyone()
    todo = [it[lang] for it in items for lang in languages if (it[lang].id, lang) not in done]
    todo.sort(key=lambda it: len(it.prompt), reverse=True)  # similar lengths batch together; deterministic
    mine = todo[state.process_index::state.num_processes]
    if done and primary:
        console.print(f"[dim]{cfg.name}/{scorer.mode}: resuming, {len(done)} done, {len(todo)} to go[/dim]")
    out_path = pred_path if state.num_processes == 1 else run_dir / f"predictions.part{state.process_index}.jsonl"
    t0 = time.perf_counter()
    with open(out_path, "a", encoding="utf-8") as f:
        for s in range(0, len(mine), chunk_size):
            chunk = mine[s:s + chunk_size]
            reqs = [scorer.requests(it) for it in chunk]
            flat = [r for rs in reqs for r in rs]
            results = backend.generate(flat) if scorer.mode == "generate" else backend.loglikelihood(flat)
            k = 0
            for it, rs in zip(chunk, reqs):
                row = {"id": it.id, "language": it.language, **scorer.score(it, results[k:k + len(rs)]),
                       "gold": it.answer, "gold_index": it.answer_index, "prompt": _sent(rs[0])}
                done[(it.id, it.language)] = row
                f.write(dumps_row(row) + "\n")
                k += len(rs)
            f.flush()
            elapsed = time.perf_counter() - t0
            console.print(f"[dim]{cfg.name}/{scorer.mode}: {s + len(chunk)}/{len(mine)} prompts"
                          f"{f' (process {state.process_index})' if state.num_processes > 1 else ''}, "
                          f"{(s + len(chunk)) / max(elapsed, 1e-9):.1f}/s[/dim]")
    elapsed = time.perf_counter() - t0
    state.wait_for_everyone()
    summary_path = run_dir / "summary.json"
    if primary:
        done.update({(r["id"], r["language"]): r for p in sorted(run_dir.glob("predictions.part*.jsonl"))
                     for r in read_predictions(p)})
        rows = [[done[(it[lang].id, lang)] for lang in languages] for it in items]
        tmp = pred_path.with_suffix(".jsonl.tmp")  # item order: the same bytes however the work was split
        tmp.write_text("".join(dumps_row(r) + "\n" for rs in rows for r in rs), encoding="utf-8")
        tmp.replace(pred_path)
        for p in run_dir.glob("predictions.part*.jsonl"):
            p.unlink()
        summary = summarize_rows(cfg, rows, items, languages, n_boot=n_boot, seed=seed)
        summary.update(task=cfg.name, kind=cfg.kind, mode=scorer.mode, model=model, prompt=prompt,
                       template=scorer.settings().get("template"), skipped_by_filter=getattr(items, "skipped", 0))
        summary_path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        write_task_report(run_dir, summary)
        (run_dir / "timing.json").write_text(json.dumps(
            {"prompts_scored": len(todo), "seconds": round(elapsed, 2), "processes": state.num_processes,
             "prompts_per_s": round(len(todo) / elapsed, 3) if todo and elapsed else None}) + "\n")
    state.wait_for_everyone()
    return json.loads(summary_path.read_text(encoding="utf-8"))
