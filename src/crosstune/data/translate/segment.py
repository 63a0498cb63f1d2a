"""Layout-preserving segmentation: a text becomes kept pieces (layout, code) and translatable sentences.

`split_text` keeps every character: fenced code blocks, blank lines, indentation, list markers, table pipes and the
whitespace between sentences are kept pieces; only prose goes to the engine. Joining the pieces back (with the
translatable ones replaced) restores the original layout exactly. `fit` splits a sentence longer than the
engine's limit at clause boundaries, then at spaces; None means nothing fits (the row is excluded).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from crosstune.data.translate.rules import is_code_line, has_letters

_FENCE = re.compile(r"^[ \t]*(```|~~~)")
# Indentation, then a list marker or a quote/table lead: "  - ", "1. ", "2) ", "a) ", "> ", "| ", "#. "
_LEAD = re.compile(r"^(\s*(?:(?:[-*+•]|\d{1,3}[.)]|[a-zA-Z][.)]|>|#{1,6}|\|)\s+|\d{1,3}[.)](?=[A-Za-z]))*)")
_TRAIL = re.compile(r"\s*$")
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace and a likely sentence start.
_BOUNDARY = re.compile(r"([.!?…]+[\"')\]»”’]*)(\s+)(?=[\"'(\[«“‘¿¡]?[A-Z0-9À-Ý])")
_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "no",
           "fig", "approx", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
           "sept", "oct", "nov", "dec", "vol", "p", "pp", "ch", "sec", "dept", "est", "mt", "ft", "lb", "oz"}
_CLAUSE = re.compile(r"(?<=[;:,])\s+")


@dataclass(slots=True)
class Piece:
    text: str
    translate: bool


def split_text(text: str, sentences: bool = True, keep_code_lines: bool = True) -> list[Piece]:
    """Pieces whose concatenation is `text`; translatable pieces are stripped prose sentences (or lines)."""
    out: list[Piece] = []
    in_fence = None
    in_code = False  # the last non-blank line was code: indented lines and comments after it are code too
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if in_fence is not None:  # inside a fenced block: kept verbatim up to the closing fence
            out.append(Piece(line, False))
            if m and m.group(1) == in_fence:
                in_fence = None
            continue
        if m:
            in_fence = m.group(1)
            out.append(Piece(line, False))
            continue
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if keep_code_lines and body.strip() and not body.lstrip().startswith("|"):  # table rows are not code
            code = is_code_line(body) or (in_code and (body[:1].isspace() or body.lstrip().startswith(("#", "//"))))
            in_code = code
            if code:
                out.append(Piece(line, False))
                continue
        lead = _LEAD.match(body).group(1)
        rest = body[len(lead):]
        trail = _TRAIL.search(rest).group(0)
        core = rest[: len(rest) - len(trail)]
        if lead:
            out.append(Piece(lead, False))
        if core:
            if "|" in lead and has_letters(core):
                out.extend(_table_cells(core, sentences))
            elif not has_letters(core):
                out.append(Piece(core, False))
            else:
                out.extend(_sentences(core, sentences))
        if trail or end:
            out.append(Piece(trail + end, False))
    return _merge_kept(out)


def _table_cells(core: str, sentences: bool) -> list[Piece]:
    """A markdown table row: cells are translated one by one, pipes and padding kept."""
    out: list[Piece] = []
    for part in re.split(r"(\s*\|\s*)", core):
        if not part:
            continue
        if "|" in part or not has_letters(part) or set(part) <= set("-: "):
            out.append(Piece(part, False))
        else:
            out.extend(_sentences(part, sentences))
    return out


def _sentences(core: str, sentences: bool) -> list[Piece]:
    if not sentences:
        return [Piece(core, True)]
    out: list[Piece] = []
    start = 0
    for m in _BOUNDARY.finditer(core):
        end = m.end(1)
        word = core[:m.start(1)].rsplit(None, 1)[-1] if core[:m.start(1)].split() else ""
        w = word.lower().lstrip("(\"'")
        if w in _ABBREV or (len(w) == 1 and w.isalpha()) or (m.group(1) == "." and re.fullmatch(r"[a-z](\.[a-z])+", w)):
            continue  # "Dr. Smith", "J. K. Rowling", "e.g. This"
        out.append(Piece(core[start:end], True))
        out.append(Piece(m.group(2), False))
        start = m.end(2)
    out.append(Piece(core[start:], True))
    return [p if (not p.translate or has_letters(p.text)) else Piece(p.text, False) for p in out if p.text]


def _merge_kept(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if out and not p.translate and not out[-1].translate:
            out[-1] = Piece(out[-1].text + p.text, False)
        else:
            out.append(p)
    return out


def fit(sentence: str, limit: int, measure: Callable[[str], int]) -> list[Piece] | None:
    """`sentence` as pieces each within `limit` (clause breaks first, then spaces); None if a word is too long."""
    if measure(sentence) <= limit:
        return [Piece(sentence, True)]
    out: list[Piece] = []
    for p in _greedy(sentence, _CLAUSE, limit, measure):
        if p.translate and measure(p.text) > limit:
            sub = _greedy(p.text, _SPACE, limit, measure)
            if any(q.translate and measure(q.text) > limit for q in sub):
                return None  # one word (a long URL-free token) is longer than the engine takes
            out += sub
        else:
            out.append(p)
    return out


_SPACE = re.compile(r"\s+")


def _greedy(text: str, splitter: re.Pattern, limit: int, measure: Callable[[str], int]) -> list[Piece]:
    """Split at `splitter` and merge neighbours back while they fit; separators become kept pieces."""
    parts, seps = splitter.split(text), splitter.findall(text)
    pieces: list[Piece] = []
    cur = parts[0]
    for sep, nxt in zip(seps, parts[1:]):
        if measure(cur + sep + nxt) <= limit:
            cur = cur + sep + nxt
        else:
            pieces += [Piece(cur, True), Piece(sep, False)]
            cur = nxt
    pieces.append(Piece(cur, True))
    return [p for p in pieces if p.text]
