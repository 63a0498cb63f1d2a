"""`crosstune quickstart`: the main job on the embedded default model."""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart(out_dir: Path = typer.Option(Path("runs/quickstart"), "--out", help="where everything is written"),
               data_root: Path = typer.Option(Path("../shared/data"), help="folder with the shared data sets"),
               steps: int = typer.Option(12, min=1, help="LoRA steps"),
               limit: int = typer.Option(30, min=1, help="Cross-MMLU items per language"),
               seed: int = typer.Option(0)) -> None:
    """Data -> train -> eval on the default model: a small CrossIn mixture, a short LoRA run, Cross-MMLU scores."""
    from crosstune.quickstart import run

    run(out_dir, data_root, steps=steps, limit=limit, seed=seed)
