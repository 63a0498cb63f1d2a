"""Run one task with one scorer on one backend: per-item predictions are appended to a JSONL file as the run goes
(a killed run resumes and skips finished items), then a JSON summary and a Markdown table are written.

Layout: OUT/<task>/<mode>/{run.json, predictions.jsonl, summary.json, table.md, position_bias.png, language_acc.png}
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from crosstune.console import console
from crosstune.data.io import dumps_row, read_rows
from crosstune.errors import CrosstuneError
from crosstune.eval.metrics import summarize
from crosstune.eval.tasks import Item, TaskConfig
from crosstune.report.consistency import write_task_report


def _run_meta(cfg: TaskConfig, scorer, model: str, languages: list[str], prompt: str) -> dict:
    return {"task": cfg.name, "mode": scorer.mode, "model": model, "languages": languages, "prompt": prompt,
            "template": cfg.prompts[prompt],
            "scorer": scorer.settings()}


def _load_done(path: Path) -> dict[tuple[str, str], dict]:
    done = {}
    if path.exists() and path.stat().st_size:
        for _, row in read_rows(path):
            done[(row["id"], row["language"])] = row
    return done


def _check_meta(run_dir: Path, meta: dict) -> None:
    meta_path = run_dir / "run.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        if old != meta:
            changed = [k for k in meta if old.get(k) != meta[k]]
            raise CrosstuneError(f"{meta_path}: an earlier run with different settings ({', '.join(changed)}) is "
                                 "in this folder; use another --out or delete it")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def run_task(backend, cfg: TaskConfig, scorer, items: list[dict[str, Item]], out_dir: Path, model: str,
             prompt: str, chunk_size: int = 64, n_boot: int = 1000, seed: int = 0) -> dict:
    languages = list(items[0]) if items else []
    run_dir = Path(out_dir) / cfg.name / scorer.mode
    _check_meta(run_dir, _run_meta(cfg, scorer, model, languages, prompt))
    pred_path = run_dir / "predictions.jsonl"
    done = _load_done(pred_path)
    todo = [it[lang] for it in items for lang in languages if (it[lang].id, lang) not in done]
    todo.sort(key=lambda it: len(it.prompt), reverse=True)  # similar lengths batch together; deterministic
    if done:
        console.print(f"[dim]{cfg.name}/{scorer.mode}: resuming, {len(done)} done, {len(todo)} to go[/dim]")
    t0, n0 = time.perf_counter(), len(todo)
    with open(pred_path, "a", encoding="utf-8") as f:
        for s in range(0, len(todo), chunk_size):
            chunk = todo[s:s + chunk_size]
            reqs = [scorer.requests(it) for it in chunk]
            flat = [r for rs in reqs for r in rs]
            results = backend.generate(flat) if scorer.mode == "generate" else backend.loglikelihood(flat)
            k = 0
            for it, rs in zip(chunk, reqs):
                row = {"id": it.id, "language": it.language, **scorer.score(it, results[k:k + len(rs)]),
                       "gold": it.answer, "gold_index": it.answer_index}
                row["correct"] = row["prediction"] == it.answer
                done[(it.id, it.language)] = row
                f.write(dumps_row(row) + "\n")
                k += len(rs)
            f.flush()
            elapsed = time.perf_counter() - t0
            console.print(f"[dim]{cfg.name}/{scorer.mode}: {s + len(chunk)}/{n0} prompts, "
                          f"{(s + len(chunk)) / max(elapsed, 1e-9):.1f}/s[/dim]")
    elapsed = time.perf_counter() - t0
    preds = [{lang: done[(it[lang].id, lang)]["prediction"] for lang in languages} for it in items]
    golds = [{lang: it[lang].answer for lang in languages} for it in items]
    summary = summarize(preds, golds, languages, n_boot=n_boot, seed=seed)
    paths: dict[str, int] = {}
    for it in items:
        for lang in languages:
            p = done[(it[lang].id, lang)]["extraction"]
            paths[p] = paths.get(p, 0) + 1
    summary.update(task=cfg.name, mode=scorer.mode, model=model, prompt=prompt, extraction_paths=paths)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_task_report(run_dir, summary)
    (run_dir / "timing.json").write_text(json.dumps(
        {"prompts_scored": n0, "seconds": round(elapsed, 2),
         "prompts_per_s": round(n0 / elapsed, 3) if n0 and elapsed else None}) + "\n")
    return summary
