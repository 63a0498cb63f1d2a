"""Protected spans: code, URLs, e-mails, placeholders, tags and markup become sentinels the engine passes through.

`mask` swaps each span for `XX<n>XX` (Bergamot, Marian and LLMs copy these unchanged; braces, `%s` and tags they
mangle), `unmask` puts the originals back and reports whether every sentinel came back exactly once. Numbers are not
masked (a sentinel in place of "1929" hurts the translation around it) but verified: `numbers_kept` checks that every
number of the source is in the output. When either check fails the caller falls back to `pieces`: the text between
spans and numbers is translated piece by piece and the spans are put back in order, so nothing protected can be lost.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

KINDS = ("code", "url", "email", "placeholder", "tag", "markup", "math")
_PATTERNS = {
    "code": r"`[^`\n]+`",
    "url": r"(?:https?://|ftp://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]",
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "placeholder": r"\{\{[^{}\n]{0,60}\}\}|\{\w[\w.:!\- ]{0,40}\}|\{\}|(?<![\w%])%\(\w+\)[sdifr]"
                   r"|(?<![\w%])%[-+0#]?\d*(?:\.\d+)?[sdifgxXr](?!\w)|\$\{\w+\}|\[\[[^\]\n]{1,40}\]\]|_{3,}",
    "tag": r"</?[A-Za-z][\w:-]*(?:\s+[^<>]*?)?/?>",
    "markup": r"\*\*|__|~~",
    "math": r"\$(?![\d\s])[^$\n]{1,80}(?<!\s)\$(?!\d)|\\[a-zA-Z]+(?:\{[^}]*\})*|\b\w+\^\{?\w+\}?",
}
SENTINEL = re.compile(r"XX(\d+)XX")
_NUMBER = re.compile(r"(?<![\w.,])[-+]?\d+(?:[.,:/]\d+)*(?:[.,]\d+)?%?(?![\w])")


def compile_spans(kinds: list[str]) -> re.Pattern:
    return re.compile("|".join(f"(?:{_PATTERNS[k]})" for k in KINDS if k in kinds))


@dataclass(slots=True)
class Masked:
    text: str  # what the engine sees
    spans: list[str]  # originals, by sentinel number


def mask(text: str, pattern: re.Pattern) -> Masked | None:
    """Spans replaced by sentinels; None when the text already contains something that looks like one."""
    if SENTINEL.search(text):
        return None
    spans: list[str] = []

    def swap(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"XX{len(spans) - 1}XX"

    return Masked(pattern.sub(swap, text), spans)


def unmask(output: str, masked: Masked) -> str | None:
    """The output with the originals back; None if a sentinel is missing, repeated or unknown."""
    found = Counter(int(i) for i in SENTINEL.findall(output))
    if found != Counter(range(len(masked.spans))):
        return None
    return SENTINEL.sub(lambda m: masked.spans[int(m.group(1))], output)


def numbers(text: str) -> Counter:
    return Counter(_NUMBER.findall(text))


def _variants(n: str) -> tuple[str, ...]:
    """A number and its form with decimal point and comma swapped (3.14 -> 3,14 is the same number in pt)."""
    swapped = n.translate(str.maketrans(".,", ",."))
    return (n, swapped) if swapped != n else (n,)


def missing_numbers(source: str, output: str) -> list[str]:
    """Numbers of `source` that `output` lacks (counted; a localized decimal separator is accepted)."""
    have = numbers(output)
    lost = []
    for n, k in numbers(source).items():
        got = sum(have.get(v, 0) for v in _variants(n))
        if got < k:
            lost.append(n)
    return lost


def pieces(text: str, pattern: re.Pattern) -> list[tuple[str, bool]]:
    """`text` cut at protected spans and numbers: (piece, translate?) in order; spans and numbers are kept."""
    cut = re.compile(f"({pattern.pattern}|{_NUMBER.pattern})")
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in cut.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], True))
        out.append((m.group(0), False))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], True))
    return out


def protected_spans(text: str, pattern: re.Pattern) -> list[str]:
    """Code and other protected spans of a text (for the preserved-span signal); fenced blocks count whole."""
    fenced = re.findall(r"```.*?```|~~~.*?~~~", text, flags=re.S)
    rest = re.sub(r"```.*?```|~~~.*?~~~", " ", text, flags=re.S)
    return fenced + [m.group(0) for m in pattern.finditer(rest)]
