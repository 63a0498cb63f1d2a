"""`crosstune data xinstruct CONFIG.yaml --out DIR [key=value ...]`."""

from __future__ import annotations

from typing import Optional

import typer

from crosstune.paths import OPTION_HELP


def xinstruct(
    path: str = typer.Argument(..., help="Pipeline YAML, e.g. configs/xinstruct/xquad_demo.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like limit=40 generate.candidates=2."),
    out_dir: str = typer.Option(..., "--out", help="Output folder: train.jsonl, manifest.json, excluded.jsonl."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help=OPTION_HELP),
) -> None:
    """X-Instruction: native text -> English instructions written for it -> graded, clustered SFT rows."""
    from crosstune.console import console, out
    from crosstune.data.xinstruct.report import summary_table
    from crosstune.data.xinstruct.runner import plan_xinstruct, run_xinstruct

    from crosstune.distributed import state

    plan = plan_xinstruct(path, overrides or [], data_root)  # every config error surfaces here, before any work
    if state().is_main:
        console.print(f"xinstruct from {path}: languages {', '.join(plan.config.languages)}, "
                      f"model {plan.config.model.backend}")
    result = run_xinstruct(plan, out_dir)
    if not result.primary:
        return  # another process of a multi-process launch: process 0 writes and reports
    console.print(summary_table(result.manifest, result.run))
    out.print(str(result.out_dir / "train.jsonl"))
