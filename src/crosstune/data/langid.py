"""Language identification with libraries that ship their model (no download at run time).

`get_detector("pycld2")` is the fast default (tens of thousands of texts/s); `get_detector("lingua", languages)`
is 10-30x slower but more accurate on short text. Both return canonical tags (`crosstune.languages.normalize`)
and a confidence in 0..1. `(None, 0.0)` means no answer (too few letters, or the backend abstains); best-effort
guesses on short text come back with a low confidence, so callers pick their own threshold.
Malay vs Indonesian defeats both. Measurements: docs/benchmarks/langid.md (benchmarks/bench_langid.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol

from crosstune.errors import CrosstuneError
from crosstune.languages import normalize

BACKENDS = ("pycld2", "lingua")
DEFAULT_BACKEND = "pycld2"
# cld2 rejects C0/C1 control characters and lone surrogates as "invalid UTF-8".
_KANA = re.compile(r"[\u3040-\u30ff]")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class Detector(Protocol):
    name: str

    def detect(self, text: str) -> tuple[str | None, float]: ...

    def detect_many(self, texts: Iterable[str]) -> list[tuple[str | None, float]]: ...


def _has_letters(text: str, n: int) -> bool:
    """At least `n` letters (any script); stops at the n-th, so long texts cost nothing."""
    return n <= 0 or _letter_run(n).search(text) is not None


@lru_cache(maxsize=16)
def _letter_run(n: int) -> re.Pattern:
    return re.compile(r"[^\W\d_](?:[\W\d_]*[^\W\d_]){%d}" % (n - 1))


@lru_cache(maxsize=512)
def _tag(code: str) -> str | None:
    try:
        return normalize(code)
    except CrosstuneError:
        return None


class Pycld2Detector:
    """CLD2 (Chrome's compact detector). `languages` re-ranks cld2's top 3: the best allowed candidate wins
    (by base language, so zh-Hant counts as zh); if none is allowed, a reliable top guess is still returned, so
    a clearly foreign text is reported, while a best-effort one becomes "no answer"."""

    name = "pycld2"

    def __init__(self, languages: list[str] | None = None, min_letters: int = 4, max_chars: int = 2000):
        import pycld2

        self._cld2 = pycld2
        self.allowed = {normalize(x).split("-")[0] for x in languages} if languages else None
        self.min_letters, self.max_chars = min_letters, max_chars

    def detect(self, text: str) -> tuple[str | None, float]:
        text = text[: self.max_chars]
        if not _has_letters(text, self.min_letters):
            return None, 0.0
        text = _BAD_CHARS.sub(" ", text)
        try:
            reliable, _, details = self._cld2.detect(text)
            if not reliable:  # short text: cld2 abstains, but its best-effort guess is usually right
                _, _, details = self._cld2.detect(text, bestEffort=True)
        except self._cld2.error:
            return None, 0.0
        scale = 1.0 if reliable else 0.5  # halve the confidence of best-effort guesses
        guesses = [(_tag(code), scale * pct / 100) for _, code, pct, _ in details if code != "un" and pct > 0]
        guesses = [(tag, p) for tag, p in guesses if tag]
        if not guesses:
            return None, 0.0
        if guesses[0][0] == "ja" and not _KANA.search(text):
            guesses[0] = ("zh", guesses[0][1])  # Japanese always has kana; all-Han text is Chinese
        if self.allowed:
            allowed = [g for g in guesses if g[0].split("-")[0] in self.allowed]  # zh-Hant counts as zh
            if allowed:
                return allowed[0]
            if not reliable:  # a best-effort guess outside the candidates is noise, not evidence
                return None, guesses[0][1]
        return guesses[0]

    def detect_many(self, texts: Iterable[str]) -> list[tuple[str | None, float]]:
        return [self.detect(t) for t in texts]


@lru_cache(maxsize=1)
def _lingua_tags() -> dict[str, object]:
    from lingua import Language

    return {normalize(lang.iso_code_639_1.name.lower()): lang for lang in Language.all()}


class LinguaDetector:
    """lingua-language-detector, restricted to `languages` when given (faster, fewer confusions)."""

    name = "lingua"

    def __init__(self, languages: list[str] | None = None, min_letters: int = 4, max_chars: int = 1000,
                 min_confidence: float = 0.0):
        from lingua import LanguageDetectorBuilder

        tags = _lingua_tags()
        self._to_tag = {lang: tag for tag, lang in tags.items()}
        if languages:
            wanted = [normalize(x) for x in languages]
            unknown = [t for t in wanted if t not in tags]
            if unknown:
                raise CrosstuneError(f"lingua cannot detect {', '.join(unknown)}; use backend pycld2 or drop them")
            if len(set(wanted)) < 2:
                raise CrosstuneError("lingua needs at least two languages to choose from")
            builder = LanguageDetectorBuilder.from_languages(*[tags[t] for t in dict.fromkeys(wanted)])
        else:
            builder = LanguageDetectorBuilder.from_all_languages()
        self._lingua = builder.build()
        self.min_letters, self.max_chars, self.min_confidence = min_letters, max_chars, min_confidence

    def _result(self, values) -> tuple[str | None, float]:
        if not values:
            return None, 0.0
        best = values[0]
        tag = self._to_tag[best.language]
        # lingua's values are relative: over all 75 languages an English sentence may top out near 0.2,
        # so by default the argmax counts (as `detect_language_of` does) unless every value is 0.
        ok = best.value > 0 and best.value >= self.min_confidence
        # rounded: the parallel and the single-text paths differ in the last float bits
        return (tag if ok else None), round(float(best.value), 4)

    def detect(self, text: str) -> tuple[str | None, float]:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Iterable[str]) -> list[tuple[str | None, float]]:
        texts = [t[: self.max_chars] for t in texts]
        out: list[tuple[str | None, float]] = [(None, 0.0)] * len(texts)
        todo = [i for i, t in enumerate(texts) if _has_letters(t, self.min_letters)]
        values = self._lingua.compute_language_confidence_values_in_parallel([texts[i] for i in todo])
        for i, vals in zip(todo, values):
            out[i] = self._result(vals)
        return out


def same_base_language(detected: str | None, declared: str) -> bool:
    """`zh-Hant` matches `zh`: cld2 calls short simplified Chinese traditional, and scripts are not our concern."""
    return detected is not None and detected.split("-")[0] == declared.split("-")[0]


def get_detector(backend: str = DEFAULT_BACKEND, languages: list[str] | None = None, **options) -> Detector:
    """A language detector; `languages` restricts (lingua) or re-ranks (pycld2) the candidates."""
    if backend == "pycld2":
        return Pycld2Detector(languages, **options)
    if backend == "lingua":
        return LinguaDetector(languages, **options)
    raise CrosstuneError(f"unknown language-ID backend {backend!r}; expected one of {', '.join(BACKENDS)}")
