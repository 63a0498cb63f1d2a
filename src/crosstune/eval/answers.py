"""Free-answer extraction and scoring: numbers (math word problems, MGSM) and short spans (extractive QA).

- Numbers: the number after the last "answer is"-style phrase when there is one (the exemplars' own
  "The answer is N."), else the last number in the output (lm-eval's flexible-extract); thousands separators and
  a trailing ".0" are ignored; compared as values.
- Spans: SQuAD's exact match and token F1 (max over gold answers) with MLQA's multilingual normalisation:
  lower-case, drop punctuation and the language's articles, and split CJK/Thai text into characters.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# "The answer is 11." in the MGSM exemplars' languages (en de es fr ru zh ja th sw bn te); the last hit wins
_ANSWER_IS = re.compile(r"(answer is|Antwort ist|Antwort lautet|respuesta es|réponse est|Ответ —|Ответ:|答案是|答えは|คำตอบคือ|"
                        r"jibu ni|উত্তর হল|సమాధానం)", re.IGNORECASE)


def parse_number(text: str) -> Decimal | None:
    m = _NUMBER.search(text.replace("\u00a0", " "))
    if not m:
        return None
    try:
        return Decimal(m.group(0).replace(",", "")).normalize()
    except InvalidOperation:
        return None


def extract_number(output: str) -> tuple[str | None, str]:
    """(the number as a canonical string or None, the rule used: answer_phrase | last_number | none)."""
    phrases = list(_ANSWER_IS.finditer(output))
    if phrases:
        n = parse_number(output[phrases[-1].end():])
        if n is not None:
            return _canon(n), "answer_phrase"
    numbers = _NUMBER.findall(output)
    for raw in reversed(numbers):
        n = parse_number(raw)
        if n is not None:
            return _canon(n), "last_number"
    return None, "none"


def _canon(n: Decimal) -> str:
    s = format(n, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def numbers_equal(pred: str | None, gold: str) -> bool:
    g = parse_number(gold)
    return pred is not None and g is not None and parse_number(pred) == g


# MLQA's evaluation (mlqa_evaluation_v1.py): articles per language, punctuation incl. Unicode categories P*
ARTICLES = {"en": r"\b(a|an|the)\b", "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
            "vi": r"\b(của|là|cái|chiếc|những)\b", "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
            "ar": "\\sال^|ال"}
_SPLIT_CHARS = re.compile(r"([\u4e00-\u9fff\u3400-\u4dbf\u3040-\u30ff\u0e00-\u0e7f\uac00-\ud7af])")


def normalize_answer(text: str, lang: str) -> list[str]:
    text = "".join(ch for ch in text.lower()
                   if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    if lang in ARTICLES:
        text = re.sub(ARTICLES[lang], " ", text)
    text = _SPLIT_CHARS.sub(r" \1 ", text)  # MLQA's mixed segmentation: CJK/Thai characters are tokens
    return text.split()


def exact_match(pred: str, gold: str, lang: str) -> float:
    return float(normalize_answer(pred, lang) == normalize_answer(gold, lang))


def f1(pred: str, gold: str, lang: str) -> float:
    p, g = normalize_answer(pred, lang), normalize_answer(gold, lang)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def span_scores(output: str, golds: list[str], lang: str) -> tuple[str, float, float]:
    """(the predicted span: the output's first line, stripped; EM; F1), max over gold answers."""
    pred = output.strip().split("\n")[0].strip()
    return pred, max(exact_match(pred, g, lang) for g in golds), max(f1(pred, g, lang) for g in golds)
