"""Which texts and lines are left untouched: empty text, text without letters, and code (by rule, not by model)."""

from __future__ import annotations

import json
import re

_LETTER = re.compile(r"[^\W\d_]")
_CODE_START = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|for .* in .*:|while .*:|if .*:\s*$|elif |else:|try:|except"
    r"|#include|#define|public |private |protected |static |function\b|var |let |const |console\.|System\.out"
    r"|print\(|printf\(|cout\s*<<|SELECT |INSERT |UPDATE |DELETE |CREATE |ALTER |DROP |<\?php|<!DOCTYPE|<html"
    r"|\$ |>>> |@\w+|[\w.\[\]]+\s*(=|\+=|-=|\*=|/=|==)\s*\S.*[;)\]}0-9\"']\s*$)")
# `greater = a`, `total += price * 2`: an identifier assigned a short expression (not a sentence)
_ASSIGN = re.compile(r"^\s*[A-Za-z_][\w.\[\]'\"]*\s*(=|\+=|-=|\*=|/=|//=)\s*[^=\s]\S*(\s+\S+){0,3}\s*$")
_CODE_END = re.compile(r"([{};]|\)\s*:|=>|->)\s*$")
_SYMBOLS = re.compile(r"[{}\[\]();=<>_/\\|&^%$#@*+`~]")
_BLANK = re.compile(r"_{3,}")


def has_letters(text: str, n: int = 2) -> bool:
    return len(_LETTER.findall(text[:200])) >= n


def is_code_line(line: str) -> bool:
    """A line that is code rather than prose: a statement keyword, a code-like ending, or mostly symbols."""
    s = line.strip()
    if not s:
        return False
    if _CODE_START.match(line) or _ASSIGN.match(line) or (_CODE_END.search(s) and not s.endswith((". ", "."))):
        return True
    if s in ("}", "{", "};", ")", "]", "end"):
        return True
    symbols = len(_SYMBOLS.findall(s)) - sum(len(b) for b in _BLANK.findall(s))  # "____" is a blank, not code
    words = len(re.findall(r"[A-Za-z]{3,}", s))
    return len(s) >= 4 and symbols / len(s) > 0.2 and words < 6


def keep_reason(text: str, keep_code: bool = True) -> str | None:
    """Why a whole field is kept as it is (None: translate it): empty, no letters, code, JSON or markup-only."""
    s = text.strip()
    if not s:
        return "empty"
    if not has_letters(s):
        return "no_letters"
    if not keep_code:
        return None
    if s[0] in "{[" and s[-1] in "}]":
        try:
            json.loads(s)
            return "json"
        except ValueError:
            pass
    if s.startswith("```") and s.endswith("```"):
        return "code"
    lines = [ln for ln in s.splitlines() if ln.strip()]
    code = sum(is_code_line(ln) for ln in lines)
    if code and code >= 0.6 * len(lines):
        return "code"
    if s.startswith("<") and s.endswith(">") and not has_letters(re.sub(r"<[^>]*>", "", s)):
        return "markup"
    return None
