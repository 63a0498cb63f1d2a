"""`crosstune eval generate`: open-ended generation over prompt sets in many languages (cached, resumable)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from crosstune.console import out
from crosstune.errors import CrosstuneError
from crosstune.paths import OPTION_HELP
from crosstune.threads import set_threads


def generate(
    model: str = typer.Option(..., help="'default', a HF folder, a .gguf, a hub id, or openai:MODEL@BASE_URL."),
    prompts: list[str] = typer.Option([], help="[LANG=]FILE: a prompt set (JSONL/JSON/Parquet/HF dataset); "
                                               "repeatable, or list several after one --prompts."),
    more_prompts: Optional[list[str]] = typer.Argument(None, metavar="[LANG=]FILE...", show_default=False,
                                                       help="More prompt sets."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder: generations.jsonl, run.json, summary.json."),
    directive: str = typer.Option("none", help="Response-language signal: none, tag (CrossIn '\\[x]' tag) or "
                                               "answer_in (X-Instruction ' Answer in {Language}.')."),
    target_language: Optional[str] = typer.Option(None, help="With tag/answer_in: ask for this language "
                                                              "(default: each prompt's own language)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N prompts of each prompt set."),
    decoding: str = typer.Option("greedy", help="Preset: greedy (CrossIn, 128 tokens), xinstruct (T 0.7, top-p "
                                                "0.9, 3 samples, 2048 tokens) or lcb (T 0.3, top-p 0.75, 100 tokens)."),
    samples: Optional[int] = typer.Option(None, min=1, help="Samples per prompt (each seeded from --seed, the prompt and k)."),
    temperature: Optional[float] = typer.Option(None, min=0.0, help="0 = greedy."),
    top_p: Optional[float] = typer.Option(None, min=0.0, max=1.0),
    max_new_tokens: Optional[int] = typer.Option(None, min=1),
    seed: int = typer.Option(0),
    template: str = typer.Option("auto", help="Prompt template (docs/generation.md): auto (the one recorded with a "
                                              "trained model, else its chat template), chat, raw (the text as is), "
                                              "alpaca, gemma or llama."),
    chat: bool = typer.Option(True, help="--no-chat is --template raw (kept for old scripts)."),
    prompt_field: Optional[str] = typer.Option(None, help="Read the prompt from this field of each row."),
    skip_bad_rows: bool = typer.Option(False, help="Skip prompt rows that cannot be read (recorded with the "
                                                   "reason in OUT/skipped.jsonl) instead of stopping."),
    batch_size: int = typer.Option(16, min=1, help="Local models: prompts per batch."),
    concurrency: Optional[int] = typer.Option(None, help="HTTP backends: requests in flight, 1 or more "
                                                         "(default: the spec's, else 4)."),
    dtype: str = typer.Option("float32", help="Local models: float32, bfloat16 or float16."),
    cache: Optional[Path] = typer.Option(None, help="Call cache file (default $CROSSTUNE_CACHE/calls.sqlite)."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads for local models (default: auto, the free cores)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help=OPTION_HELP),
) -> None:
    """Generate responses to prompt sets; a rerun or a resumed run makes no repeated calls."""
    from crosstune.eval.generation import PRESETS, generate as run
    from crosstune.eval.prompt_sets import resolve_prompt_spec
    from crosstune.paths import Lookup

    if concurrency is not None and concurrency < 1:
        raise CrosstuneError(f"--concurrency {concurrency}: expected 1 or more (requests in flight per process)")
    if decoding not in PRESETS:
        raise CrosstuneError(f"--decoding {decoding!r}: expected one of {', '.join(PRESETS)}")
    overrides = {k: v for k, v in dict(samples=samples, temperature=temperature, top_p=top_p,
                                        max_new_tokens=max_new_tokens).items() if v is not None}
    settings = replace(PRESETS[decoding], seed=seed, template=template if chat else "raw", **overrides)
    set_threads(threads)
    lookup = Lookup(root=data_root)  # each FILE by the data-root rule (crosstune.paths)
    specs = [resolve_prompt_spec(p, lookup, what="--prompts") for p in [*prompts, *(more_prompts or [])]]
    s = run(model, specs, out_dir, decoding=settings, directive=directive,
            target_language=target_language, limit=limit, prompt_field=prompt_field, batch_size=batch_size,
            concurrency=concurrency, dtype=dtype, cache_path=cache, skip_bad_rows=skip_bad_rows)
    from crosstune.distributed import state

    if not state().is_main:  # under accelerate launch, process 0 reports for all
        return
    speed = f", {s['tokens_per_s']} tokens/s" if s["tokens_per_s"] else ""
    out.print(f"{s['n_rows']} rows ({s['n_items']} prompts x {s['samples']} samples) in {out_dir}: "
              f"{s['calls']} calls, {s['cache_hits']} cache hits, {s['rows_resumed']} rows resumed{speed}"
              + (f", {s['skipped_rows']} bad rows skipped" if s["skipped_rows"] else ""))
