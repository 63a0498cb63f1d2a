"""Open-ended generation runs: prompt sets x samples through the call cache, one row per (prompt, sample).

Layout: DIR/run.json (settings), DIR/generations.jsonl (rows appended as chunks finish; rewritten in canonical
order at the end, so the same settings give the same bytes however often the run was killed), DIR/summary.json.
Every backend call goes through `CachedBackend`, keyed by (model fingerprint, request incl. decoding settings and
seed): a killed run resumes (finished calls are in the cache, finished rows in the file), a rerun makes no calls,
and a changed setting is a new key. Under `accelerate launch` / `torchrun` each process generates every n-th row
not yet done into its own part file and process 0 merges them (`crosstune.distributed`): the same file as one
process, and a killed run of any number of processes resumes from all of them.
Row contract (read by fidelity, judges, experiments):
`{"id", "sample", "language", "expected_language", "directive", "prompt", "response", "model", "fingerprint"}`
plus `index` (row position in its prompt file), `source` (file:line) and `seed`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crosstune import distributed
from crosstune.console import console
from crosstune.data.io import dumps_row
from crosstune.errors import CrosstuneError
from crosstune.eval import rundir
from crosstune.eval.prompt_sets import DIRECTIVES, PromptItem, directed_text, read_prompt_set
from crosstune.languages import normalize
from crosstune.models.backends.base import GenerateRequest

ROW_FIELDS = ("id", "sample", "language", "expected_language", "directive", "prompt", "response", "model",
              "fingerprint")
GENERATIONS = "generations.jsonl"


@dataclass(frozen=True)
class Decoding:
    """Decoding settings; `samples` requests per prompt. Sample k of a prompt is seeded from (seed, language, id,
    k), so samples of different prompts are independent and one prompt's samples never depend on the others."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    template: str = "auto"  # models/render.py: auto (recorded, else chat), chat, raw (the user text as is), named
    stop: tuple[str, ...] = ()


# The papers' settings (METHODS.md): CrossIn/SeaEval greedy 128 tokens; X-Instruction's inference sampling
# (top_k 50 and no_repeat_ngram_size 6 are not expressible over the OpenAI API, so they are left out);
# the Language Confusion Benchmark's generation settings.
PRESETS = {
    "greedy": Decoding(max_new_tokens=128),
    "xinstruct": Decoding(max_new_tokens=2048, temperature=0.7, top_p=0.9, samples=3),
    "lcb": Decoding(max_new_tokens=100, temperature=0.3, top_p=0.75),
}


@dataclass
class GenerationPlan:
    """What to generate: one request per (prompt item, sample), with its output row minus the response."""

    rows: list[dict] = field(default_factory=list)
    requests: list[GenerateRequest] = field(default_factory=list)


def load_items(prompts: list[str], limit: int | None = None, prompt_field: str | None = None,
               skipped: list[dict] | None = None) -> list[PromptItem]:
    """All prompt items of the specs, in order; a repeated (language, id) is an error naming both rows. With a
    `skipped` list, bad rows are recorded there ({"source", "reason"}) instead of stopping the run."""
    if not prompts:
        raise CrosstuneError("no prompt sets given; pass --prompts [LANG=]FILE (repeatable)")
    items: list[PromptItem] = []
    seen: dict[tuple[str, str], str] = {}
    for spec in prompts:
        on_bad = None if skipped is None else (lambda loc, why: skipped.append({"source": loc, "reason": why}))
        for it in read_prompt_set(spec, prompt_field=prompt_field, limit=limit, on_bad=on_bad):
            key = (it.language, it.id)
            if key in seen:
                raise CrosstuneError(f"{it.source}: id {it.id!r} ({it.language}) repeats {seen[key]}; ids must be "
                                     "unique per language (give each prompt set its own ids)")
            seen[key] = it.source
            items.append(it)
    return items


def plan_generation(items: list[PromptItem], decoding: Decoding, directive: str = "none",
                    target_language: str | None = None, prompter=None) -> GenerationPlan:
    """`prompter` (models/prompting.py, bound to the backend) renders each prompt: ids for a local model."""
    if directive not in DIRECTIVES:
        raise CrosstuneError(f"--directive {directive!r}: expected one of {', '.join(DIRECTIVES)}")
    if target_language and directive == "none":
        raise CrosstuneError("--target-language needs --directive tag or answer_in (with none, the expected "
                             "response language is the prompt's own)")
    target = normalize(target_language) if target_language else None
    plan = GenerationPlan()
    for it in items:
        expected = target or it.language
        text = directed_text(it.user_text, it.language, directive, expected)
        msgs = [{"role": r, "content": c} for r, c in it.messages[:-1]] + [{"role": "user", "content": text}]
        if decoding.template == "raw" and len(msgs) > 1:
            raise CrosstuneError(f"{it.source}: a multi-turn conversation needs a template (not --template raw)")
        prompt = prompter.generate(msgs) if prompter is not None else msgs if decoding.template != "raw" else text
        for k in range(decoding.samples):
            seed = sample_seed(decoding.seed, it.language, it.id, k) if decoding.temperature > 0 else 0
            plan.rows.append({"id": it.id, "sample": k, "language": it.language, "expected_language": expected,
                              "directive": directive, "prompt": text, "index": it.index, "source": it.source,
                              "seed": seed})
            plan.requests.append(GenerateRequest(prompt=prompt, max_new_tokens=decoding.max_new_tokens,
                                                 stop=tuple(decoding.stop), temperature=decoding.temperature,
                                                 seed=seed, top_p=decoding.top_p if decoding.temperature > 0 else 1.0))
    return plan


def sample_seed(seed: int, language: str, item_id: str, k: int) -> int:
    """A stable 31-bit seed per (run seed, prompt, sample); greedy requests use 0 (the seed is irrelevant)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}|{language}|{item_id}|{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _row_key(row: dict) -> tuple[str, str, int]:
    return row["language"], row["id"], int(row["sample"])


def _parallelism(backend) -> int:
    return max(int(getattr(backend, "concurrency", 0) or 0), int(getattr(backend, "batch_size", 0) or 0), 1)


def run_generation(backend, items: list[PromptItem], out_dir: str | Path, *, model: str, decoding: Decoding,
                   directive: str = "none", target_language: str | None = None, chunk_size: int | None = None,
                   extra_meta: dict | None = None, skipped: list[dict] | None = None) -> dict:
    """Generate every (item, sample) not yet in DIR through `backend` (a `CachedBackend`); returns the summary."""
    from crosstune.models.prompting import Prompter

    out_dir = Path(out_dir)
    prompter = Prompter(decoding.template).bind(backend)
    plan = plan_generation(items, decoding, directive, target_language, prompter)
    fingerprint = backend.fingerprint
    meta = {"model": model, "fingerprint": fingerprint, "directive": directive, "template": prompter.resolved,
            "target_language": normalize(target_language) if target_language else None,
            "decoding": asdict(decoding), "prompts": (extra_meta or {}).get("prompts"),
            "limit": (extra_meta or {}).get("limit"), "n_items": len(items), "n_rows": len(plan.rows)}
    st = distributed.state()
    if st.is_main:
        rundir.check_run(out_dir, meta)
    st.barrier()
    if not st.is_main:
        rundir.check_run(out_dir, meta, write=False)
    if skipped is not None and st.is_main:  # why each bad prompt row was left out (datatrove-style exclusion record)
        (out_dir / "skipped.jsonl").write_text("".join(dumps_row(r) + "\n" for r in skipped), encoding="utf-8")
    path = out_dir / GENERATIONS
    done = distributed.read_done(path, _row_key, st, "generation row")
    todo = [i for i, row in enumerate(plan.rows) if _row_key(row) not in done]
    resumed = len(plan.rows) - len(todo)
    if resumed and st.is_main:
        console.print(f"[dim]{out_dir}: resuming, {resumed} rows done, {len(todo)} to go[/dim]")
    if st.world > 1 and st.is_main:
        what = "prompts" if decoding.samples == 1 else "prompt samples"
        console.print(f"[dim]{out_dir}: {distributed.share_line(len(todo), what, st)}[/dim]")
    mine = distributed.my_share(todo, st)
    chunk = chunk_size or max(32, 4 * _parallelism(backend))  # rows are written per chunk; bigger = less drain
    calls0, hits0 = backend.calls, backend.hits
    tokens0 = getattr(backend, "tokens_generated", 0) or 0
    t0 = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]generate{st.tag()}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not mine) as progress, distributed.open_rows(path, st) as out:
        task = progress.add_task("generate", total=len(mine))
        for s in range(0, len(mine), chunk):
            idx = mine[s:s + chunk]
            texts = backend.generate([plan.requests[i] for i in idx])
            for i, text in zip(idx, texts):
                row = {**plan.rows[i], "response": text, "model": model, "fingerprint": fingerprint}
                out.write(row)
            out.flush()
            progress.update(task, advance=len(idx))
    seconds = time.perf_counter() - t0
    counts = st.sum({"calls": backend.calls - calls0, "hits": backend.hits - hits0,
                     "tokens": (getattr(backend, "tokens_generated", 0) or 0) - tokens0})
    ordered = distributed.merge_parts(path, _row_key, [_row_key(r) for r in plan.rows], st, out.rows,
                                      what="generation row", shape=lambda r: {k: r[k] for k in _row_order(r)})
    summary = None
    if st.is_main:
        summary = _summary(ordered, meta, counts["calls"], counts["hits"], resumed, counts["tokens"], seconds)
        summary["skipped_rows"] = len(skipped or [])
        summary["processes"] = st.world
        rundir.write_json(out_dir / "summary.json", summary)
    return st.gather(summary)[0] if st.world > 1 else summary


def _row_order(row: dict) -> list[str]:
    return [k for k in ROW_FIELDS if k in row] + [k for k in row if k not in ROW_FIELDS]


def _summary(rows: list[dict], meta: dict, calls: int, hits: int, resumed: int, tokens: int, seconds: float) -> dict:
    per_language: dict[str, dict] = {}
    for r in rows:
        s = per_language.setdefault(r["language"], {"rows": 0, "empty": 0})
        s["rows"] += 1
        s["empty"] += not r["response"].strip()
    return {"model": meta["model"], "fingerprint": meta["fingerprint"], "directive": meta["directive"],
            "target_language": meta["target_language"], "n_items": meta["n_items"], "n_rows": len(rows),
            "samples": meta["decoding"]["samples"], "per_language": per_language,
            "rows_resumed": resumed, "calls": calls, "cache_hits": hits,
            "new_tokens": tokens if tokens else None, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 2) if tokens and seconds > 0 else None}


def read_generations(path: str | Path) -> list[dict]:
    """Rows of a generation run: a run folder (its generations.jsonl) or the JSONL file itself; each row is
    checked for the contract fields, and a problem names the file and line."""
    p = Path(path)
    if p.is_dir():
        p = p / GENERATIONS
    if not p.is_file():
        raise CrosstuneError(f"{p}: no such file (expected a generation run folder or its {GENERATIONS})")
    from crosstune.data.io import read_rows
    from crosstune.errors import where

    rows = []
    for line, row in read_rows(p):
        missing = [k for k in ROW_FIELDS if k not in row]
        if missing:
            raise CrosstuneError(f"{where(p, line)}: not a generation row, missing {', '.join(missing)}; "
                                 f"expected fields {', '.join(ROW_FIELDS)}")
        rows.append(row)
    return rows


def generate(model: str, prompts: list[str], out_dir: str | Path, *, decoding: Decoding, directive: str = "none",
             target_language: str | None = None, limit: int | None = None, prompt_field: str | None = None,
             batch_size: int | None = None, concurrency: int | None = None, dtype: str | None = None,
             cache_path: str | Path | None = None, skip_bad_rows: bool = False) -> dict:
    """`crosstune eval generate`: read the prompt sets (all of them first, so bad input fails before any call),
    build the backend for the model spec, wrap it in the call cache, run."""
    from crosstune.models.backends import cached_backend, parse_spec

    skipped: list[dict] | None = [] if skip_bad_rows else None
    items = load_items(prompts, limit, prompt_field, skipped)
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} bad prompt row(s), e.g. {skipped[0]['source']}: "
                      f"{skipped[0]['reason']} (all in skipped.jsonl)[/yellow]")
    plan_generation(items[:1], decoding, directive, target_language)  # validate the directive settings early
    from crosstune.models.prompting import Prompter

    Prompter(decoding.template)  # and the template name
    kind = parse_spec(model).get("kind", "hf")
    overrides = {"concurrency": concurrency} if kind == "openai" else {"batch_size": batch_size, "dtype": dtype}
    # the cache commits every result as it arrives, so a SIGKILL loses only requests still in flight
    # a second crosstune on this --out refuses at once; the processes of one launch share the primary's lock
    with rundir.run_lock(out_dir, "eval generate", distributed.state().is_main):
        backend = cached_backend(model, cache_path, **overrides)
        return run_generation(backend, items, out_dir, model=model, decoding=decoding, directive=directive,
                              target_language=target_language, skipped=skipped,
                              extra_meta={"prompts": list(prompts), "limit": limit})
