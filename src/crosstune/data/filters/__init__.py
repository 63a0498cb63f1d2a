"""Filter blocks, configured under `filters:` in a recipe; they run in this order: length, exact_dedup,
langid, near_dedup (cheap checks first, and language ID only on rows that survive them), then a user's own
filters under `custom:` (`package.module:Object`, `filters/custom.py`) in the order listed."""

from __future__ import annotations

from crosstune.config import StrictModel
from crosstune.data.blocks import Block
from crosstune.data.filters.custom import CustomFilterSpec, make_custom
from crosstune.data.filters.dedup import ExactDedup, ExactDedupConfig, NearDedup, NearDedupConfig
from crosstune.data.filters.langid import LangIdConfig, LangIdFilter
from crosstune.data.filters.length import LengthConfig, LengthFilter


class FiltersConfig(StrictModel):
    length: LengthConfig | None = LengthConfig()
    exact_dedup: ExactDedupConfig | None = ExactDedupConfig()
    langid: LangIdConfig | None = LangIdConfig()
    near_dedup: NearDedupConfig | None = None
    custom: list[CustomFilterSpec] = []


def make_filters(cfg: FiltersConfig, languages: list[str], workers: int = 1) -> list[Block]:
    """The configured blocks in order; `workers > 1` lets language ID use `workers - 1` worker processes (the
    caller closes the blocks)."""
    blocks: list[Block] = []
    if cfg.length is not None:
        blocks.append(LengthFilter(cfg.length))
    if cfg.exact_dedup is not None and cfg.exact_dedup.enabled:
        blocks.append(ExactDedup(cfg.exact_dedup))
    if cfg.langid is not None:
        blocks.append(LangIdFilter(cfg.langid, languages, workers))
    if cfg.near_dedup is not None:
        blocks.append(NearDedup(cfg.near_dedup))
    return blocks + [make_custom(spec) for spec in cfg.custom]


__all__ = ["FiltersConfig", "make_filters", "LangIdFilter", "LengthFilter", "ExactDedup", "NearDedup"]
