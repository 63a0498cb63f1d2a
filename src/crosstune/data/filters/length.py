"""Length filter on the final messages (characters, after marking)."""

from __future__ import annotations

from typing import Literal

from crosstune.config import Chars, StrictModel
from crosstune.data.blocks import Filter, Row


class LengthConfig(StrictModel):
    min_chars: Chars = 1
    max_chars: Chars = 20000
    sides: list[Literal["user", "assistant"]] = ["user", "assistant"]


class LengthFilter(Filter):
    name = "length"

    def __init__(self, cfg: LengthConfig):
        super().__init__()
        self.cfg = cfg
        self.sides = frozenset(cfg.sides)

    def check(self, row: Row) -> tuple[str, str] | None:
        lo, hi, sides = self.cfg.min_chars, self.cfg.max_chars, self.sides
        for m in row.example.messages:
            if m.role not in sides:
                continue
            c = m.content
            n = len(c) if c and not (c[0].isspace() or c[-1].isspace()) else len(c.strip())
            if lo <= n <= hi:
                continue
            if n < self.cfg.min_chars:
                return "too_short", f"{m.role}: {n} chars < {self.cfg.min_chars}"
            if n > self.cfg.max_chars:
                return "too_long", f"{m.role}: {n} chars > {self.cfg.max_chars}"
        return None
