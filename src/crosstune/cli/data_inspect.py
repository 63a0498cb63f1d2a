"""`crosstune data inspect`."""

from __future__ import annotations

import typer

from crosstune.errors import CrosstuneError


def inspect(path: str = typer.Argument(...)) -> None:
    """Not available yet."""
    raise CrosstuneError("data inspect is not available yet")
