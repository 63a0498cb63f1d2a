"""`crosstune data build RECIPE.yaml --out DIR [--seed N] [key=value ...]`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from crosstune.console import console, out
from crosstune.paths import OPTION_HELP


def build(
    path: str = typer.Argument(..., help="Recipe YAML, e.g. recipes/crossin.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like recipe.modes.en2x=6000 seed=1."),
    out_dir: str = typer.Option(..., "--out", help="Output folder for train.jsonl, manifest.json, exclusions.jsonl."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Overrides the recipe's seed."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Processes to use (default 2 when 2+ cores are free at start: language "
                                               "ID in a second process); 1 = all in this process. Same bytes either "
                                               "way."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help=OPTION_HELP),
) -> None:
    """Build a training mixture from a recipe: sources -> recipe -> filters -> files, with a manifest."""
    from crosstune.data.build import plan_build, run_build

    plan = plan_build(path, overrides or [], seed, data_root)  # every config error surfaces here, before any work
    console.print(f"building [bold]{plan.config.name}[/] (seed {plan.config.seed}) from {path}")
    result = run_build(plan, out_dir, workers)
    m = result.manifest
    for line in m["log"]:
        console.print(f"  {line}")
    table = Table("mode", "instruction->response", "rows", title=f"{m['counts']['rows']:,} rows")
    for key, n in m["counts"]["per_mode_and_pair"].items():
        mode, pair = key.split(":", 1)
        table.add_row(mode, pair, f"{n:,}")
    console.print(table)
    for name, stats in m["filters"].items():
        shown = {k: v for k, v in stats.items() if k.startswith(("dropped", "in", "out")) or "agreement" in k}
        console.print(f"  filter {name}: {shown}")
    t = result.timings
    console.print(f"  time: load {t['load_s']:.1f}s, build {t['build_s']:.1f}s "
                  f"(language ID {t.get('langid_s', 0):.1f}s), write {t['write_s']:.1f}s")
    if t.get("langid_worker_texts"):
        console.print(f"  language-ID worker process: {t['langid_worker_texts']:,} texts, "
                      f"{t['langid_worker_cpu_s']:.1f}s CPU, peak RSS {t['langid_worker_rss_mb']:.0f} MB")
    out.print(str(result.out_dir / "train.jsonl"))
