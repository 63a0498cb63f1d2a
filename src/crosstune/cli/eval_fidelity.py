"""`crosstune eval fidelity DIR_OR_FILE --out DIR [--lid fasttext|pycld2|lingua|fasttext:PATH]`."""

from __future__ import annotations

from pathlib import Path

import typer

from crosstune.console import out


def fidelity(
    generations: Path = typer.Argument(..., help="A generation run folder (crosstune eval generate) or its "
                                                 "generations.jsonl."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: items.jsonl, summary.json, results.md, "
                                                    "confusion.png."),
    lid: str = typer.Option("fasttext", help="Language ID: fasttext (lid.176, bundled), pycld2, lingua, or "
                                             "fasttext:PATH to another fastText LID model."),
    threshold: float = typer.Option(0.3, min=0.0, max=1.0, help="A line's label counts when the LID confidence "
                                                                "is at least this (else 'unknown', a miss)."),
    min_tokens: int = typer.Option(5, min=1, help="Lines with fewer tokens are not judged on their own."),
    n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Response-language fidelity: expected vs detected language, LPR/WPR/LCPR, confusion matrix, misses."""
    from crosstune.eval.fidelity import run_fidelity

    s = run_fidelity(generations, out_dir, lid, threshold, min_tokens, n_boot, seed)
    for lang, r in s["per_language"].items():
        wpr = "  —  " if r["wpr"] is None else f"{r['wpr']:.3f}"
        out.print(f"{lang:>8}  n {r['n']:4d}  expected {r['expected_rate']:.3f}  LPR {r['lpr']:.3f}  WPR {wpr}  "
                  f"LCPR {r['lcpr']:.3f}")
    o = s["overall"]
    out.print(f"{'all':>8}  n {o['n']:4d}  expected {o['expected_rate']:.3f}  LPR {o['lpr']:.3f}")
