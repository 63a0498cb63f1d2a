"""`crosstune eval fidelity DIR_OR_FILE --out DIR [--protocol crosstune|reference] [--lid ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from crosstune.console import console, out


def fidelity(
    generations: Path = typer.Argument(..., help="A generation run folder (crosstune eval generate), its "
                                                 "generations.jsonl, or LCB's outputs CSV (id, model, completion, "
                                                 "task, source, language; .csv.gz too)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: items.jsonl, summary.json, results.md "
                                                    "(crosstune protocol: confusion.png too)."),
    protocol: str = typer.Option("crosstune", help="crosstune (Markdown-aware, WPR for every script, undetectable "
                                                   "answers are misses) or reference (LCB's compute_metrics.py "
                                                   "exactly; needs the 'lcb' extra)."),
    lid: str = typer.Option("fasttext", help="Language ID: fasttext (lid.176.ftz, bundled), pycld2, lingua, or "
                                             "fasttext:PATH to another fastText LID model (e.g. lid.176.bin)."),
    words: Optional[Path] = typer.Option(None, help="Reference protocol: LCB's English word list (default: "
                                                    "language_confusion/words under the data root)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder data paths are relative to (else $CROSSTUNE_DATA)."),
    threshold: float = typer.Option(0.3, min=0.0, max=1.0, help="Crosstune protocol: a line's label counts when the "
                                                                "LID confidence is at least this (else 'unknown')."),
    min_tokens: int = typer.Option(5, min=1, help="Crosstune protocol: lines with fewer tokens are not judged on "
                                                  "their own."),
    n_boot: int = typer.Option(1000, min=1, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Response-language fidelity: expected vs detected language, LPR/WPR/LCPR, confusion matrix, misses."""
    from crosstune.eval.fidelity import run_fidelity
    from crosstune.report.fidelity import fidelity_lines, write_fidelity_report

    s = run_fidelity(generations, out_dir, lid, threshold, min_tokens, n_boot, seed, protocol, words, data_root)
    console.print(f"wrote {out_dir}/{' and '.join(write_fidelity_report(out_dir, s))}")
    for line in fidelity_lines(s):
        out.print(line, highlight=False)
