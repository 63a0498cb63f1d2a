"""Generation suites in an experiment: `crosstune.eval.generation` (issue 8) writes generations, then fidelity."""

from __future__ import annotations

from pathlib import Path

from crosstune.errors import CrosstuneError


def _modules():
    try:
        from crosstune.eval import fidelity, generation
    except ImportError as e:
        raise CrosstuneError(f"generation suites need crosstune.eval.generation and crosstune.eval.fidelity, "
                             f"which this install lacks ({e})") from None
    return generation, fidelity


def check_generation_suite(name: str, suite, data_root: Path | None) -> dict:
    _modules()
    return {}


def run_generation_suite(stage, ctx, suite, model: str) -> dict:
    _modules()
    raise CrosstuneError("generation suites are not wired yet")
