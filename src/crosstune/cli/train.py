"""`crosstune train CONFIG.yaml [key=value ...]`."""

from __future__ import annotations

import typer

from crosstune.errors import CrosstuneError


def train(config: str = typer.Argument(..., help="training config YAML"),
          overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. lr=1e-4 max_steps=10"),
          resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint")) -> None:
    """Supervised fine-tuning (LoRA or full) on a crosstune mixture."""
    raise CrosstuneError("training is not available yet")
