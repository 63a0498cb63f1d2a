"""`crosstune eval judge --judge M --a DIR_A --b DIR_B --protocol pinch|xinstruct --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from crosstune.console import out


def judge(
    judge_model: str = typer.Option(..., "--judge", help="The judge: 'default', a HF folder, .gguf, hub id, or "
                                                          "openai:MODEL@BASE_URL."),
    a: Path = typer.Option(..., "--a", help="Generation run A (the model under test)."),
    b: list[str] = typer.Option(..., "--b", help="Generation run B (the reference); LANG=DIR (repeatable) gives a "
                                                 "language its own reference model (Pinch's IF_L)."),
    protocol: str = typer.Option(..., help="pinch (side-by-side, both orders) or xinstruct (0-10 scores, both "
                                           "orders)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: items.jsonl, summary.json, results.md."),
    prompt: Optional[Path] = typer.Option(None, help="Judge prompt file ({lang}, {instruction}, {output1}, "
                                                     "{output2}; optional [system]/[user] blocks)."),
    gate: str = typer.Option("auto", help="Language gate for the headline score: auto (on when any expected "
                                          "language is not English), on, off. Both scores are always reported."),
    lid: str = typer.Option("fasttext", help="Language ID for the gate (as in crosstune eval fidelity)."),
    cache: Optional[Path] = typer.Option(None, help="Call cache file (default $CROSSTUNE_CACHE/calls.sqlite)."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1, help="Judge answer length (default: the "
                                                 "protocol's, 256 for xinstruct as the reference, 16 for pinch)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N pairs of each language."),
    n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    concurrency: Optional[int] = typer.Option(None, help="HTTP judges (openai:MODEL@URL): requests in flight per "
                                                         "process, 1 or more (default: the spec's, else 4)."),
) -> None:
    """Judge two generation runs pairwise in both orders; scores with position bias, CIs and the language gate."""
    from crosstune.distributed import state
    from crosstune.eval.judge import run_judge
    from crosstune.report.evaluation import write_judge_report

    s = run_judge(judge_model, str(a), list(b), protocol, out_dir, prompt_file=prompt, gate_mode=gate, lid=lid,
                  cache_path=cache, n_boot=n_boot, seed=seed, max_new_tokens=max_new_tokens, limit=limit,
                  concurrency=concurrency)
    if not state().is_main:  # under accelerate launch, process 0 writes the report and prints for all
        return
    write_judge_report(out_dir, s)
    for lang, r in list(s["per_language"].items()) + [("all", s["overall"])]:
        u, g = r["ungated"], r["gated"]
        out.print(f"{lang:>6}  score {u['score']}  gated {g['score']}  (n {u['n']}, W/T/L {u['win']}/{u['tie']}/"
                  f"{u['loss']})  flip rate {r['position_bias']['flip_rate']}  parse failures {r['parse_failures']}")
    pb = s["position_bias"]
    out.print(f"position bias: first {pb['first']} / second {pb['second']} (favours {pb['favours']}); "
              f"parse failures {s['parse_failures']['failed']} of {s['parse_failures']['verdicts']}")
