"""Translate texts faithfully: segment, protect, call the (cached) engine once per distinct segment, verify, fall
back per span, and rejoin with the original layout.

A text is either kept whole by rule (`rules.keep_reason`), excluded (`too_long`: a word longer than the engine
takes), or cut into kept pieces and units. A unit is one sentence within the engine's limit, masked
(`protect.mask`). After the engine, a unit whose sentinels or numbers did not survive is translated again piece by
piece between its spans and numbers (`protect.pieces`), so spans and numbers are kept by construction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from crosstune.data.translate.protect import Masked, mask, missing_numbers, pieces, unmask
from crosstune.data.translate.rules import has_letters, keep_reason
from crosstune.data.translate.segment import fit, split_text


@dataclass(slots=True)
class Unit:
    source: str
    masked: Masked | None  # None: the source holds sentinel-like text, go straight to pieces
    output: str = ""
    fallback: bool = False
    copied: bool = False
    empty: bool = False


@dataclass
class TextResult:
    output: str | None  # None when the text could not be translated (see status)
    status: str  # ok | kept:<reason> | too_long | empty_translation
    units: int = 0
    fallbacks: int = 0
    translated_chars: int = 0  # source characters sent to the engine
    copied_chars: int = 0  # of those, characters of units that came back unchanged
    detail: str = ""


@dataclass
class _Plan:
    parts: list = field(default_factory=list)  # str (kept) or Unit
    status: str = "ok"
    detail: str = ""


class TextTranslator:
    """Runs texts through a cached translator (`SegmentCache` or a self-caching engine)."""

    def __init__(self, translator, limit: int, measure: Callable[[str], int], pattern: re.Pattern,
                 sentences: bool = True, keep_code: bool = True):
        self.translator = translator
        self.limit, self.measure, self.pattern = limit, measure, pattern
        self.sentences, self.keep_code = sentences, keep_code
        self.segments_sent = 0  # distinct engine inputs in this run (cache hits included)

    def plan(self, text: str) -> _Plan:
        reason = keep_reason(text, self.keep_code)
        if reason:
            return _Plan([text], f"kept:{reason}")
        plan = _Plan()
        for piece in split_text(text, self.sentences, self.keep_code):
            if not piece.translate:
                plan.parts.append(piece.text)
                continue
            fitted = fit(piece.text, self.limit, self.measure)
            if fitted is None:
                longest = max(piece.text.split(), key=len)
                return _Plan([], "too_long", f"a {len(longest)}-character word is longer than the engine's "
                                             f"limit ({self.limit}): {longest[:40]}...")
            for p in fitted:
                plan.parts.append(Unit(p.text, mask(p.text, self.pattern)) if p.translate else p.text)
        return plan

    def run(self, texts: list[str], source: str, target: str, progress=None) -> list[TextResult]:
        plans = [self.plan(t) for t in texts]
        units = [u for p in plans for u in p.parts if isinstance(u, Unit)]
        first = self._translate([u.masked.text for u in units if u.masked is not None], source, target, progress)
        retry: list[Unit] = []
        for u in units:
            if u.masked is None:
                retry.append(u)
                continue
            out = first[u.masked.text]
            restored = unmask(out, u.masked) if out.strip() else None
            if restored is None or missing_numbers(u.source, restored):
                retry.append(u)
            else:
                u.output = restored
                u.copied = _same(restored, u.source)
        if retry:
            self._per_piece(retry, source, target, progress)
        return [self._assemble(p) for p in plans]

    def _translate(self, texts: list[str], source: str, target: str, progress) -> dict[str, str]:
        distinct = list(dict.fromkeys(texts))
        self.segments_sent += len(distinct)
        out: dict[str, str] = {}
        for i, text in self.translator.translate_iter(distinct, source, target):
            out[distinct[i]] = text
            if progress is not None:
                progress(1)
        return out

    def _per_piece(self, units: list[Unit], source: str, target: str, progress) -> None:
        split = {id(u): pieces(u.source, self.pattern) for u in units}
        wanted = [_edges(p)[1] for u in units for p, tr in split[id(u)] if tr and has_letters(p)]
        done = self._translate(wanted, source, target, progress)
        for u in units:
            parts = []
            for p, tr in split[id(u)]:
                if tr and has_letters(p):
                    lead, core, trail = _edges(p)
                    got = done[core]
                    u.empty = u.empty or not got.strip()
                    parts.append(lead + got + trail)
                else:
                    parts.append(p)
            u.output, u.fallback = "".join(parts), True
            u.copied = _same(u.output, u.source)

    @staticmethod
    def _assemble(plan: _Plan) -> TextResult:
        if plan.status != "ok":
            kept = plan.parts[0] if plan.parts else None
            return TextResult(kept, plan.status, detail=plan.detail)
        units = [u for u in plan.parts if isinstance(u, Unit)]
        if any(u.empty for u in units):
            bad = next(u for u in units if u.empty)
            return TextResult(None, "empty_translation", detail=f"the engine returned nothing for: {bad.source[:60]}")
        out = "".join(u.output if isinstance(u, Unit) else u for u in plan.parts)
        return TextResult(out, "ok", len(units), sum(u.fallback for u in units),
                          sum(len(u.source) for u in units), sum(len(u.source) for u in units if u.copied))


_LETTERS = re.compile(r"[^\W\d_]")


def _edges(piece: str) -> tuple[str, str, str]:
    """(lead, core, trail): the core runs from the first to the last letter; the spaces and punctuation around it
    (" km (" around a number) stay as they were, since engines drop or move them in fragments."""
    letters = [m.start() for m in _LETTERS.finditer(piece)]
    start, end = letters[0], letters[-1] + 1
    if end < len(piece) and piece[end] in ".!?" and (end + 1 == len(piece) or piece[end + 1].isspace()):
        end += 1  # a fragment that ends a sentence keeps its full stop inside
    return piece[:start], piece[start:end], piece[end:]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
