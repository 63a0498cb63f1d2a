"""`crosstune quickstart`: the main job on the embedded default model."""

from __future__ import annotations

from crosstune.errors import CrosstuneError


def quickstart() -> None:
    """Load the default model, build a tiny mixture, score a few questions."""
    raise CrosstuneError("quickstart is not available yet")
