"""`crosstune quickstart`: the main job on the embedded default model and demo data (no outside files)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from crosstune.cli.run import THREADS_HELP


def quickstart(out_dir: Path = typer.Option(Path("runs/quickstart"), "--out", help="where everything is written; "
                                            "running again resumes and reruns nothing done"),
               steps: Optional[int] = typer.Option(None, min=1, help="LoRA steps (default: the experiment's 60)"),
               prompt_limit: Optional[int] = typer.Option(None, min=1, help="fidelity prompts per language "
                                                                            "(default: all 13)"),
               mc_limit: Optional[int] = typer.Option(None, min=1, help="multiple-choice items (default: all 47)"),
               threads: Optional[int] = typer.Option(None, min=0, help=THREADS_HELP)) -> None:
    """CrossIn mixture -> LoRA -> before/after evaluation -> report, on the embedded demo data (crosstune/demo)."""
    from crosstune.quickstart import run

    summary = run(out_dir, steps=steps, prompt_limit=prompt_limit, mc_limit=mc_limit, threads=threads)
    if summary["failed"]:  # as `crosstune run`: the run finished, but not everything in it
        raise typer.Exit(1)
