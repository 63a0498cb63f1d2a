"""`crosstune data align`."""

from __future__ import annotations

import typer

from crosstune.errors import CrosstuneError


def align(path: str = typer.Argument(...)) -> None:
    """Not available yet."""
    raise CrosstuneError("data align is not available yet")
