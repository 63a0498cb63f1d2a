"""`crosstune eval ...`: parallel benchmarks, cross-lingual consistency, AC3."""

from __future__ import annotations

import typer

app = typer.Typer(help="Evaluate models language by language.", no_args_is_help=True)
