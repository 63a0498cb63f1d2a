"""Language Confusion Pass Rate (Marchisio et al. 2024): language evidence, line- and word-level checks, LPR/WPR/LCPR.

Written from the definition (METHODS.md section 6), with what the reference code leaves out:
- **Evidence only.** Markdown is parsed (markdown-it, CommonMark): fenced and indented code blocks, inline code, HTML
  and markup are dropped; URLs, e-mail addresses and numbers are removed from the prose; punctuation and symbols
  become spaces. What is left, line by line, is the text the LID sees.
- **Lines.** A line is judged when it has at least `min_tokens` tokens (whitespace words; in scripts written without
  spaces, Han/kana/Thai/..., every 2 characters count as one token, about what jieba/MeCab give). A line passes when
  the LID's top label is the expected language with confidence >= `threshold` (0.3, as the reference); a
  low-confidence line is `unknown` and fails. A response with no letters left at all is **undetectable, a miss**
  (the reference skips it, IFEval passes it).
- **Short answers** (the whole evidence under `min_tokens` tokens, e.g. `好的。`, `北京。`, `Yes.`): a few words
  cannot be identified reliably, so they are judged by what can be known. Every letter must be in a script the
  expected language is written in (Han for zh; Han or kana for ja; Hangul or Han for ko; Latin for fr; ...), else
  `wrong-script`; then the LID is asked without its letter minimum, and the answer fails only when it names another
  language with confidence >= `SHORT_THRESHOLD` (0.5: at 0.3, one or two words are often misread, `Sí claro` reads
  as Czech at 0.36). So `Danke.` fails for an expected fr, while `Yes.` for fr passes (fastText: en at 0.40, not
  sure enough). A longer response whose lines are all short is judged as one line, as before.
- **Words (WPR), every script.** The reference flags any English word (over 3 letters) and only for non-Latin
  targets. Here a word is a maximal run of Latin letters (so English glued to Han, kana, Hangul or Arabic text,
  `这是一个machine learning模型`, is found), and it is English evidence when, written in lower case, with at least 4
  letters, it is common in English (wordfreq Zipf >= `en_min_zipf`, 3.0 = once per million words) and at least
  `margin` (1.0 = 10x) Zipf units rarer in the target language's own word list. Shared words and loans ("hotel",
  "idea", "software" in Spanish; "google" in Russian) are then not evidence, so the check also works for
  Latin-script languages. Capitalised words (names, brands, acronyms) are not counted. A Latin-script target
  with no wordfreq list gets no WPR (reported as such); English targets get none (English words are not confusion).
- LCPR = harmonic mean of LPR and WPR (the paper's headline; the code leaves it out); where WPR is undefined,
  LCPR = LPR.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

MIN_TOKENS = 5
THRESHOLD = 0.3
SHORT_THRESHOLD = 0.5  # how sure the LID must be to fail a short answer (see the module docstring)
EN_MIN_ZIPF = 3.0
MARGIN = 1.0
UNKNOWN = "unknown"

_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)\S+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,:/]\d+)*%?")
_NOSPACE = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u0f00-\u0fff\u3040-\u30ff\u3400-\u4dbf"
                      r"\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")  # Thai, Lao, Myanmar, Khmer, Tibetan, CJK
_LATIN = "A-Za-z\u00c0-\u024f\u1e00-\u1eff\u0300-\u036f"  # Latin letters (with accents) and combining marks
# a whole run of ASCII lower-case letters: bounded by anything but a Latin letter (space, digit, Han, Arabic, ...)
_LATIN_WORD = re.compile(rf"(?<![{_LATIN}])[a-z]{{4,}}(?![{_LATIN}])")
_LATIN_SCRIPTS = {"Latn"}
# detector tags that name the same written language as the expected tag
_ALIASES = {"nb": "no", "nn": "no"}


def base_language(tag: str | None) -> str:
    """The label used for comparisons and the confusion matrix: `zh-Hant` -> `zh`, `nb` -> `no`, None -> unknown."""
    if not tag:
        return UNKNOWN
    base = tag.split("-")[0]
    return _ALIASES.get(base, base)


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def prose_lines(text: str) -> list[str]:
    """The prose of a Markdown response, one entry per source line, without code, HTML and markup."""
    lines: list[str] = []
    for tok in _markdown().parse(text or ""):
        if tok.type != "inline":
            continue  # fence, code_block and html_block never reach here; their text is not evidence
        parts = [""]
        for child in tok.children or []:
            if child.type == "text":
                parts[-1] += child.content
            elif child.type in ("softbreak", "hardbreak"):
                parts.append("")
            elif child.type in ("code_inline", "html_inline"):
                parts[-1] += " "
        lines.extend(parts)
    return lines


def clean_line(line: str) -> str:
    """URLs, e-mail addresses, numbers, punctuation and symbols removed; whitespace collapsed."""
    line = _NUMBER.sub(" ", _EMAIL.sub(" ", _URL.sub(" ", line)))
    line = "".join(" " if unicodedata.category(c)[0] in "PS" or unicodedata.category(c) == "Cc" else c for c in line)
    return " ".join(line.split())


def evidence(text: str) -> list[str]:
    """The non-empty cleaned prose lines of a response: what counts as language evidence."""
    return [c for c in (clean_line(x) for x in prose_lines(text)) if c]


def count_tokens(line: str) -> int:
    """Whitespace words, plus one token per 2 characters of scripts written without spaces."""
    nospace = len(_NOSPACE.findall(line))
    rest = _NOSPACE.sub(" ", line).split()
    return len(rest) + math.ceil(nospace / 2)


# ---- word level -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _word_list(lang: str) -> dict[str, float] | None:
    """wordfreq's frequency table for a language (looked up directly, so zh/ja need no tokenizer), or None."""
    import wordfreq

    code = {"no": "nb", "fil": "fil", "tl": "fil"}.get(lang, lang)
    if code not in wordfreq.available_languages(wordlist="best"):
        return None
    return wordfreq.get_frequency_dict(code, wordlist="best")


def _zipf(table: dict[str, float] | None, word: str) -> float:
    freq = table.get(word, 0.0) if table else 0.0
    return math.log10(freq) + 9 if freq > 0 else 0.0


def _script(lang: str) -> str:
    from crosstune.errors import CrosstuneError
    from crosstune.languages import get_language

    try:
        return get_language(lang).script
    except CrosstuneError:
        return "Zyyy"


def wpr_method(target: str) -> str | None:
    """How the word-level check works for a target language, or None when it has no WPR."""
    target = base_language(target)
    if target == "en":
        return None
    if _word_list(target) is not None:
        return "lexicon"
    return "english-lexicon" if _script(target) not in _LATIN_SCRIPTS else None


def english_words(line: str, target: str, en_min_zipf: float = EN_MIN_ZIPF, margin: float = MARGIN) -> list[str]:
    """Lower-case Latin words of >= 4 letters that are common English and >= `margin` Zipf rarer in `target`."""
    target = base_language(target)
    en, own = _word_list("en"), _word_list(target)
    found = []
    for w in _LATIN_WORD.findall(line):
        z_en = _zipf(en, w)
        if z_en >= en_min_zipf and z_en - _zipf(own, w) >= margin:
            found.append(w)
    return found


# ---- one response ---------------------------------------------------------------------------------------------
@dataclass
class ResponseCheck:
    expected: str
    detected: str  # response-level label (whole evidence text), or "unknown"
    confidence: float
    line_error: bool
    word_error: bool | None  # None: not checked (line error, or no WPR for this language)
    lines: list[dict] = field(default_factory=list)  # {"text", "language", "confidence", "ok"} per judged line
    english: list[str] = field(default_factory=list)
    # why it failed: empty, no-evidence (nothing left after cleaning), low-confidence (no line reaches the threshold),
    # wrong-language, unknown-line (some line below the threshold), english-words
    reason: str | None = None


def check_response(text: str, expected: str, detector, min_tokens: int = MIN_TOKENS, threshold: float = THRESHOLD,
                   en_min_zipf: float = EN_MIN_ZIPF, margin: float = MARGIN) -> ResponseCheck:
    """Detect the response's language as a whole and line by line, and look for English words."""
    want = base_language(expected)
    lines = evidence(text)
    if not lines:
        reason = "empty" if not (text or "").strip() else "no-evidence"
        return ResponseCheck(want, UNKNOWN, 0.0, True, None, reason=reason)
    whole = "\n".join(lines)
    if count_tokens(whole) < min_tokens:
        return _check_short(whole, want, detector, threshold, en_min_zipf, margin)
    judged = [x for x in lines if count_tokens(x) >= min_tokens] or [whole]
    results = detector.detect_many([whole] + judged)

    def label(res):
        tag, conf = res
        return (base_language(tag) if tag and conf >= threshold else UNKNOWN), float(conf)

    detected, conf = label(results[0])
    rows = []
    for line, res in zip(judged, results[1:]):
        lang, c = label(res)
        rows.append({"text": line[:120], "language": lang, "confidence": round(c, 4), "ok": lang == want})
    line_error = not all(r["ok"] for r in rows)
    check = ResponseCheck(want, detected, round(conf, 4), line_error, None, rows)
    if line_error:
        check.reason = "low-confidence" if detected == UNKNOWN and all(r["language"] == UNKNOWN for r in rows) \
            else "wrong-language" if any(r["language"] not in (want, UNKNOWN) for r in rows) else "unknown-line"
    elif wpr_method(want):
        check.english = [w for x in lines for w in english_words(x, want, en_min_zipf, margin)]
        check.word_error = bool(check.english)
        if check.word_error:
            check.reason = "english-words"
    if check.reason is None and detected != want:  # every line passes, but the whole response reads otherwise
        check.reason = "low-confidence" if detected == UNKNOWN else "wrong-language"
    return check


# ---- short answers -------------------------------------------------------------------------------------------
# the first word of a letter's Unicode name -> its ISO 15924 script
_SCRIPT_OF = {"LATIN": "Latn", "CYRILLIC": "Cyrl", "GREEK": "Grek", "ARABIC": "Arab", "HEBREW": "Hebr",
              "DEVANAGARI": "Deva", "BENGALI": "Beng", "GURMUKHI": "Guru", "GUJARATI": "Gujr", "ORIYA": "Orya",
              "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda", "MALAYALAM": "Mlym", "SINHALA": "Sinh",
              "THAI": "Thai", "LAO": "Laoo", "TIBETAN": "Tibt", "MYANMAR": "Mymr", "GEORGIAN": "Geor",
              "ARMENIAN": "Armn", "ETHIOPIC": "Ethi", "KHMER": "Khmr", "HANGUL": "Hang", "HIRAGANA": "Hira",
              "KATAKANA": "Kana", "CJK": "Hani"}
# a language's script (crosstune.languages) -> the letter scripts it is written in
_WRITTEN_IN = {"Hans": {"Hani"}, "Hant": {"Hani"}, "Jpan": {"Hani", "Hira", "Kana"}, "Kore": {"Hang", "Hani"}}


def letter_scripts(text: str) -> set[str]:
    """ISO 15924 scripts of the letters in `text` (letters of scripts not in the table are left out)."""
    found = set()
    for c in set(text):
        if c.isalpha():
            script = _SCRIPT_OF.get(unicodedata.name(c, "").split(" ")[0])
            if script:
                found.add(script)
    return found


def _unfloored(detector, text: str) -> tuple[str | None, float]:
    """The detector's label for `text` without its minimum number of letters."""
    floor = getattr(detector, "min_letters", None)
    if floor is None:
        return detector.detect(text)
    detector.min_letters = 1
    try:
        return detector.detect(text)
    finally:
        detector.min_letters = floor


def _check_short(whole: str, want: str, detector, threshold: float, en_min_zipf: float = EN_MIN_ZIPF,
                 margin: float = MARGIN) -> ResponseCheck:
    """A whole answer under `min_tokens` tokens: the script must fit; the LID can only fail it when it is sure."""
    script = _script(want)
    allowed = _WRITTEN_IN.get(script, {script} if script in _SCRIPT_OF.values() else None)
    tag, conf = _unfloored(detector, whole)
    label = base_language(tag) if tag and conf >= max(threshold, SHORT_THRESHOLD) else UNKNOWN
    row = {"text": whole[:120], "language": label, "confidence": round(float(conf), 4), "short": True}
    if allowed is not None and letter_scripts(whole) - allowed:
        reason = "wrong-script"
    elif label not in (want, UNKNOWN):
        reason = "wrong-language"
    else:
        reason = None
    row["ok"] = reason is None
    check = ResponseCheck(want, label if reason else want, round(float(conf), 4), reason is not None, None, [row],
                          reason=reason)
    if reason is None and wpr_method(want):
        check.english = english_words(whole, want, en_min_zipf, margin)
        check.word_error = bool(check.english)
        check.reason = "english-words" if check.word_error else None
    return check


# ---- rates ----------------------------------------------------------------------------------------------------
def harmonic(a: float | None, b: float | None) -> float | None:
    if a is None:
        return None
    if b is None:
        return a
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def pass_rates(checks: list[ResponseCheck]) -> dict:
    """LPR, WPR and LCPR over the responses of one language (every response counts; undetectable ones fail)."""
    n = len(checks)
    line_errors = sum(c.line_error for c in checks)
    word_checked = [c for c in checks if c.word_error is not None]
    word_errors = sum(bool(c.word_error) for c in word_checked)
    lpr = 1 - line_errors / n if n else None
    wpr = 1 - word_errors / len(word_checked) if word_checked else None
    return {"n": n, "line_errors": line_errors, "word_checked": len(word_checked), "word_errors": word_errors,
            "lpr": lpr, "wpr": wpr, "lcpr": harmonic(lpr, wpr)}
