"""`crosstune run EXPERIMENT.yaml --out DIR`: recipes x training configs x evaluation suites, cached and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from crosstune.paths import OPTION_HELP

THREADS_HELP = ("torch CPU threads for every stage (training, evaluation, generation); 0 = auto: the cores free "
                "at start (affinity and load measured; at least 1). Default: the experiment's `threads` (0)")


def run(experiment: Path = typer.Argument(..., help="experiment YAML (see docs/experiments.md)"),
        out_dir: Path = typer.Option(..., "--out", help="output folder; running again resumes and reruns nothing done"),
        overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides of the experiment file"),
        data_root: Optional[Path] = typer.Option(None, "--data-root", help=OPTION_HELP),
        threads: Optional[int] = typer.Option(None, min=0, help=THREADS_HELP)) -> None:
    """Run an experiment: every stage cached by the hash of its inputs; results.csv and report/index.html."""
    from crosstune.console import out
    from crosstune.experiments.runner import run_experiment

    overrides = [*(overrides or []), *([f"threads={threads}"] if threads is not None else [])]
    summary = run_experiment(experiment, out_dir, overrides, data_root)
    if summary.get("helper_process"):  # process 1.. of a multi-process launch: process 0 reports
        return
    out.print(f"ran {len(summary['ran'])}, cached {len(summary['cached'])}, failed {len(summary['failed'])}, "
              f"skipped {len(summary['skipped'])} stages in {summary['seconds']:.0f} s")
    out.print(f"wrote {out_dir / 'results.csv'} and {summary.get('report', '')}")
    if summary["failed"]:  # exit 1: the run finished but a stage failed (2 stays for a bad file or argument)
        import sys

        print(f"error: {len(summary['failed'])} stage(s) failed: {', '.join(summary['failed'])} (each one's "
              f"traceback is in its folder's error.json; rerun to retry them)", file=sys.stderr)
        raise typer.Exit(1)
