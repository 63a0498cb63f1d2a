"""`crosstune train CONFIG.yaml [key=value ...] [--resume [--allow-changed KEY,...]]`."""

from __future__ import annotations

import typer

from crosstune.paths import OPTION_HELP


def train(config: str = typer.Argument(..., help="training config YAML"),
          overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. optim.lr=1e-4 max_steps=10"),
          resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint in output_dir"),
          allow_changed: str = typer.Option("", "--allow-changed", metavar="KEY,...",
                                            help="with --resume: accept these changed config keys "
                                                 "(e.g. seed,batch.size,data)"),
          data_root: str = typer.Option(None, "--data-root", help=OPTION_HELP)) -> None:
    """Supervised fine-tuning (LoRA or full) on a crosstune mixture, with loss per language."""
    from crosstune.config import load_config
    from crosstune.console import out
    from crosstune.train.config import TrainConfig, with_data_paths

    # a bad config or a missing data file fails before torch is imported
    cfg = with_data_paths(load_config(TrainConfig, config, overrides or []), data_root)
    from crosstune.quiet import quiet_libraries
    from crosstune.train.loop import train as run

    with quiet_libraries():  # transformers' "Loading weights" bars and the libraries' deprecation warnings
        result = run(cfg, resume=resume, allow_changed=[k.strip() for k in allow_changed.split(",") if k.strip()])
    if result is not None:  # only the main process of a multi-process launch reports
        out.print_json(data=result)
