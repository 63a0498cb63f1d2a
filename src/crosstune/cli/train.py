"""`crosstune train CONFIG.yaml [key=value ...] [--resume [--allow-changed KEY,...]]`."""

from __future__ import annotations

import typer


def train(config: str = typer.Argument(..., help="training config YAML"),
          overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. optim.lr=1e-4 max_steps=10"),
          resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint in output_dir"),
          allow_changed: str = typer.Option("", "--allow-changed", metavar="KEY,...",
                                            help="with --resume: accept these changed config keys "
                                                 "(e.g. seed,batch.size,data)")) -> None:
    """Supervised fine-tuning (LoRA or full) on a crosstune mixture, with loss per language."""
    from crosstune.config import load_config
    from crosstune.console import out
    from crosstune.train.config import TrainConfig

    cfg = load_config(TrainConfig, config, overrides or [])  # a bad config fails before torch is imported
    from crosstune.train.loop import train as run

    result = run(cfg, resume=resume, allow_changed=[k.strip() for k in allow_changed.split(",") if k.strip()])
    if result is not None:  # only the main process of a multi-process launch reports
        out.print_json(data=result)
