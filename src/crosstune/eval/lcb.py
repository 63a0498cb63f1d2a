"""The Language Confusion Benchmark as shipped tasks (`eval run --tasks lcb_monolingual,lcb_crosslingual`): read LCB's
prompts through the data root, generate through the cached, resumable generation path with the paper's decoding,
score the completions with LCB's reference metric and with crosstune's fidelity protocol, write LCB's table.

Layout per task: OUT/<task>/generate/ (crosstune.eval.generation: run.json, generations.jsonl), completions.csv
(LCB's outputs layout: `id, model, completion, task, source, language`, readable by the reference script itself),
reference/ and crosstune/ (`crosstune.eval.fidelity` with each protocol) and lcb_summary.json (both tables, timing);
`crosstune.report.fidelity.write_lcb_report` renders table.md (LCB's table, then both protocols side by side). In an
experiment the suite kind `lcb` runs them (`crosstune.experiments.lcb`).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import replace
from pathlib import Path

from crosstune.console import console
from crosstune.errors import CrosstuneError, where
from crosstune.eval import lcb_reference
from crosstune.eval.tasks import TaskConfig, load_task

KIND = "language_confusion"
DECODINGS = ("lcb", "greedy")  # the paper's (T 0.3, top-p 0.75, seeded), or greedy; both at most 100 new tokens


def is_lcb_task(name: str) -> bool:
    """Whether a task name or YAML is an LCB task (kind language_confusion); unknown names are left to the caller."""
    try:
        return load_task(name).kind == KIND
    except CrosstuneError:
        return False


def split_tasks(names: list[str]) -> tuple[list[str], list[str]]:
    """(other tasks, LCB tasks), each in the given order."""
    lcb = [n for n in names if is_lcb_task(n)]
    return [n for n in names if n not in lcb], lcb


def run_lcb_part(model: str, names: list[str], out_dir: str | Path, **options) -> list[str]:
    """`eval run`'s hook: run the LCB tasks among `names` (`run_lcb_tasks`) and return the other task names."""
    from crosstune.eval import rundir
    from crosstune.distributed import state

    others, lcb = split_tasks(names)
    if lcb:  # one writer per --out, as for every eval command
        with rundir.run_lock(out_dir, "eval run", state().is_main):
            run_lcb_tasks(model, lcb, out_dir, **options)
    return others


def task_id(cfg: TaskConfig) -> str:
    """LCB's `task` column: `monolingual` / `crosslingual` for the shipped tasks, else the task name."""
    return cfg.name.removeprefix("lcb_")


def load_prompts(cfg: TaskConfig, languages: list[str] | None = None, limit: int | None = None,
                 data_root=None, data: str | None = None) -> list[dict]:
    """One row per prompt: {id (row index in its file, LCB's id), source (the file's `source` column), language,
    prompt, where}. `data` replaces the folder layout (`--data TASK=DIR`: DIR/{source}/{key}.csv)."""
    from crosstune import paths
    from crosstune.eval import templating

    wanted = languages or list(cfg.languages)
    unknown = [lang for lang in wanted if lang not in cfg.languages]
    if unknown:
        raise CrosstuneError(f"task {cfg.name}: unknown languages {unknown}; it has {list(cfg.languages)}")
    pattern = f"{data.rstrip('/')}/{{source}}/{{key}}.csv" if data else cfg.data_files
    if not isinstance(pattern, str) or "{source}" not in pattern:
        raise CrosstuneError(f"{cfg.source} field 'data_files': an LCB task needs one path with {{source}} and "
                             "{key}, e.g. language_confusion/test_sets/monolingual/{source}/{key}.csv")
    template = cfg.prompts[cfg.default_prompt]
    rows = []
    for source, langs in cfg.sources.items():
        for lang in (x for x in langs if x in wanted):
            raw = pattern.format(source=source, key=cfg.language_key(lang), lang=lang)
            path = paths.resolve(raw, root=data_root, config=cfg.source if not cfg.shipped else None,
                                 what=f"task {cfg.name}: data_files")
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                if "prompt" not in (reader.fieldnames or []):
                    raise CrosstuneError(f"{where(path, 1)}: no 'prompt' column (LCB test sets have prompt, "
                                         "source, language)")
                for n, row in enumerate(reader):
                    if limit is not None and n >= limit:
                        break
                    loc = where(path, reader.line_num)
                    text = templating.render(template if isinstance(template, str) else template["default"],
                                             {**row, "row": row, "lang": lang}, loc, f"prompts.{cfg.default_prompt}")
                    rows.append({"id": str(n), "source": row.get("source") or source, "language": lang,
                                 "prompt": text, "where": loc})
    if not rows:
        raise CrosstuneError(f"task {cfg.name}: no prompts for languages {','.join(wanted)}")
    return rows


def decoding_for(cfg: TaskConfig, decoding: str = "lcb", seed: int = 0, max_new_tokens: int | None = None,
                 template: str | None = None):
    from crosstune.eval.generation import PRESETS

    if decoding not in DECODINGS:
        raise CrosstuneError(f"--decoding {decoding!r}: LCB tasks take lcb (T 0.3, top-p 0.75) or greedy")
    from dataclasses import fields

    template = template or cfg.template
    d = replace(PRESETS["lcb"], seed=seed, max_new_tokens=max_new_tokens or cfg.generation.max_new_tokens)
    if "template" in {f.name for f in fields(d)}:  # the prompt renderer takes any template name
        d = replace(d, template=template)
    elif template in ("auto", "chat", "raw"):
        d = replace(d, chat=template != "raw")
    else:
        raise CrosstuneError(f"--template {template!r}: LCB tasks take auto/chat (the model's chat template) or raw")
    return replace(d, temperature=0.0, top_p=1.0) if decoding == "greedy" else d


def run_lcb_tasks(model: str, names: list[str], out_dir: str | Path, *, languages: list[str] | None = None,
                  limit: int | None = None, decoding: str = "lcb", seed: int = 0, max_new_tokens: int | None = None,
                  template: str | None = None, batch_size: int = 16, dtype: str = "float32", lid: str = "fasttext",
                  words: str | Path | None = None, data: dict[str, str] | None = None, data_root=None,
                  cache: str | Path | None = None) -> dict[str, dict]:
    """Every LCB task into OUT/<task>/; prompts, word list and extra are checked before the model loads."""
    from crosstune.eval.generation import run_generation
    from crosstune.eval.prompt_sets import PromptItem
    from crosstune.models.backends import cached_backend

    loaded = []
    for name in names:
        cfg = load_task(name)
        langs = [x for x in languages if x in cfg.languages] if languages else None
        if languages and not langs:
            raise CrosstuneError(f"task {cfg.name}: none of --languages {','.join(languages)} "
                                 f"(it has {','.join(cfg.languages)})")
        prompts = load_prompts(cfg, langs, limit, data_root, (data or {}).get(cfg.name))
        loaded.append((cfg, prompts, decoding_for(cfg, decoding, seed, max_new_tokens, template)))
    words_path = lcb_reference.resolve_words(words, data_root)
    lcb_reference.check_extra({p["language"] for _, ps, _ in loaded for p in ps})
    from crosstune.distributed import state

    backend = cached_backend(model, cache, batch_size=batch_size, dtype=dtype)
    st = state()
    results = {}
    for cfg, prompts, dec in loaded:
        task_dir = Path(out_dir) / cfg.name
        items = [PromptItem(id=f"{p['source']}/{p['id']}", index=int(p["id"]), language=p["language"],
                            messages=(("user", p["prompt"]),), source=p["where"]) for p in prompts]
        t0 = time.perf_counter()
        gen = run_generation(backend, items, task_dir / "generate", model=model, decoding=dec,
                             extra_meta={"prompts": [cfg.name], "limit": limit})
        seconds = time.perf_counter() - t0
        # under a multi-process launch the generations are merged; process 0 scores them and tells the others
        summary = score_task(cfg, prompts, task_dir, model, gen, seconds, lid, words_path, dec) if st.is_main else None
        results[cfg.name] = st.gather(summary)[0] if st.world > 1 else summary
    return results


def score_task(cfg: TaskConfig, prompts: list[dict], task_dir: Path, model: str, gen: dict, seconds: float,
               lid: str, words: Path, dec) -> dict:
    """completions.csv, both protocols and lcb_summary.json for one generated task (its table.md:
    `crosstune.report.fidelity.write_lcb_report`)."""
    from dataclasses import asdict

    from crosstune.eval.fidelity import run_fidelity
    from crosstune.eval.generation import read_generations

    by_key = {(p["language"], f"{p['source']}/{p['id']}"): p for p in prompts}
    outputs = []
    for r in read_generations(task_dir / "generate"):
        p = by_key[(r["language"], r["id"])]
        outputs.append({"id": p["id"], "model": model, "completion": r["response"], "task": task_id(cfg),
                        "source": p["source"], "language": p["language"]})
    lcb_reference.write_outputs(task_dir / "completions.csv", outputs)
    ref = run_fidelity(task_dir, task_dir / "reference", lid=lid, protocol="reference", words=words)
    ct = run_fidelity(task_dir, task_dir / "crosstune", lid=lid, protocol="crosstune")
    for row in ct["lcb"]:
        row["model"] = model
    summary = {"task": cfg.name, "kind": KIND, "model": model, "decoding": asdict(dec), "n_prompts": len(prompts),
               "generation_seconds": round(seconds, 2), "new_tokens": gen.get("new_tokens"),
               "calls": gen.get("calls"), "cache_hits": gen.get("cache_hits"),
               "lcb_reference": ref["lcb"], "lcb_crosstune": ct["lcb"]}
    (task_dir / "lcb_summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    all_all = next(r for r in ref["lcb"] if r["source"] == "all" and r["language"] == "all")
    console.print(f"{cfg.name}: LPR {all_all['lpr']:.2%}  WPR "
                  f"{'N/A' if all_all['wpr'] is None else format(all_all['wpr'], '.2%')} (reference protocol); "
                  f"wrote {task_dir}/lcb_summary.json")
    return summary
