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
        self.lo, self.hi = cfg.min_chars, cfg.max_chars

    def check(self, row: Row) -> tuple[str, str] | None:
        if row.paired:  # a PairRow: its two contents, without building its messages
            lo, hi, u, r = self.lo, self.hi, row.user, row.response
            if (u and r and lo <= len(u) <= hi and lo <= len(r) <= hi and not u[0].isspace()
                    and not u[-1].isspace() and not r[0].isspace() and not r[-1].isspace()):
                return None  # the common case: both in range, nothing to strip
            for role, c in (("user", u), ("assistant", r)):
                n = len(c) if c and not (c[0].isspace() or c[-1].isspace()) else len(c.strip())
                if not lo <= n <= hi and role in self.sides:
                    return self._verdict(role, c)
            return None
        for m in row.example.messages:
            if m.role in self.sides:
                verdict = self._verdict(m.role, m.content)
                if verdict is not None:
                    return verdict
        return None

    def _verdict(self, role: str, c: str) -> tuple[str, str] | None:
        n = len(c) if c and not (c[0].isspace() or c[-1].isspace()) else len(c.strip())
        if self.lo <= n <= self.hi:
            return None
        if n < self.lo:
            return "too_short", f"{role}: {n} chars < {self.lo}"
        return "too_long", f"{role}: {n} chars > {self.hi}"
