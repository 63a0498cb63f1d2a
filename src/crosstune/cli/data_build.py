"""`crosstune data build`."""

from __future__ import annotations

import typer

from crosstune.errors import CrosstuneError


def build(path: str = typer.Argument(...)) -> None:
    """Not available yet."""
    raise CrosstuneError("data build is not available yet")
