"""Language-ID filter: each checked side must be detected as its declared language.

Texts are detected once: a text-keyed front cache holds the results of recent texts; when the texts it holds pass
`FRONT_CHARS` characters it is cleared, and those detected since the last clear move to a memo keyed by a 128-bit
digest of the text (`DigestMap`, about 25 bytes per distinct text however long), where later batches look up the
texts the front does not have. Until the first clear no text is digested at all. CrossIn reuses each source text
across modes. Detections below
`min_confidence`, or with no answer (numbers, code, very short text), count as undetermined and are kept unless
`drop_undetermined`. The agreement rate per side (agree / (agree + mismatch)) goes to the manifest.
"""

from __future__ import annotations

import time
from typing import Literal

from crosstune.config import StrictModel
from crosstune.data.blocks import BatchFilter, Row
from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.digests import DigestMap
from crosstune.data.digests import digest as _digest
from crosstune.languages import normalize

Side = Literal["user", "assistant"]
OUTCOMES = ("agree", "mismatch", "undetermined")
AGREE, MISMATCH, UNDETERMINED = range(3)


class LangIdConfig(StrictModel):
    backend: Literal["pycld2", "lingua"] = "pycld2"
    sides: list[Side] = ["user", "assistant"]
    min_confidence: float = 0.0
    restrict: bool = True  # candidates = the recipe's languages (lingua restricts, pycld2 re-ranks)
    accept: dict[str, list[str]] = {}  # declared -> also accepted, e.g. {ms: [id]}
    drop_undetermined: bool = False


class LangIdFilter(BatchFilter):
    name = "langid"

    def __init__(self, cfg: LangIdConfig, languages: list[str]):
        super().__init__()
        self.cfg = cfg
        self.detector = get_detector(cfg.backend, languages if cfg.restrict and len(languages) > 1 else None)
        self.memo = DigestMap()  # digest of a text evicted from the front -> index into `results`
        self.results: list[tuple[str | None, float]] = []  # each distinct (tag, confidence) once
        self._codes: dict[tuple, int] = {}
        self.front: dict[str, tuple[str | None, float]] = {}  # recent texts -> detection (bounded)
        self.fresh: dict[str, int] = {}  # front texts detected since the last eviction -> result code
        self._front_chars = 0
        self.seconds = 0.0  # time spent in the detector, reported apart from the build
        self.sides = set(cfg.sides)
        self.min_confidence = cfg.min_confidence
        self.outcomes = {side: [0, 0, 0] for side in dict.fromkeys(cfg.sides)}  # side -> counts per OUTCOMES
        self.accept = {normalize(k): {normalize(x) for x in v} for k, v in cfg.accept.items()}

    FRONT_CHARS = 32_000_000  # the front cache is cleared when the texts it holds pass this many characters

    def prepare(self, batch: list[Row]) -> None:
        front, sides = self.front, self.sides
        if self._front_chars > self.FRONT_CHARS:
            self._evict()
        new: dict[str, None] = {}
        for row in batch:
            for side, t, _ in row.checks:
                if t not in front and side in sides:
                    new[t] = None
        if not new:
            return
        self._front_chars += sum(map(len, new))
        texts = list(new)
        if len(self.memo):  # the front was cleared before: texts seen then are found by digest
            keys = [_digest(t) for t in texts]
            codes = self.memo.get_many(keys)
            todo = {k: t for k, t, c in zip(keys, texts, codes) if c is None}  # distinct by digest
            found = self._detect(list(todo.values()))
            by_key = dict(zip(todo, found))
            codes = [by_key[k] if c is None else c for k, c in zip(keys, codes)]
        else:  # nothing was evicted yet: a text not in the front was never seen
            codes = self._detect(texts)
        results = self.results
        for t, c in zip(texts, codes):
            front[t] = results[c]

    def _detect(self, texts: list[str]) -> list[int]:
        """Detect `texts` (each new); their result codes, remembered in `fresh` until the next eviction."""
        if not texts:
            return []
        t0 = time.perf_counter()
        found = self.detector.detect_many(texts)
        self.seconds += time.perf_counter() - t0
        self.stats["texts_detected"] += len(texts)
        codes, fresh, results, known = [], self.fresh, self.results, self._codes
        for t, res in zip(texts, found):
            code = known.get(res)
            if code is None:
                code = known[res] = len(results)
                results.append(res)
            fresh[t] = code
            codes.append(code)
        return codes

    def _evict(self) -> None:
        """Clear the front; the texts detected since the last eviction move to the digest memo."""
        put = self.memo.put
        for t, code in self.fresh.items():
            put(_digest(t), code)
        self.fresh = {}
        self.front.clear()
        self._front_chars = 0

    def _agrees(self, detected: str, declared: str) -> bool:
        return same_base_language(detected, declared) or detected in self.accept.get(declared, ())

    def check(self, row: Row) -> tuple[str, str] | None:
        verdict = None
        outcomes, front = self.outcomes, self.front
        for side, text, declared in row.checks:
            counts = outcomes.get(side)
            if counts is None:  # a side this filter does not check
                continue
            tag, conf = front[text]
            if tag is None or conf < self.min_confidence:
                counts[UNDETERMINED] += 1
                if self.cfg.drop_undetermined and verdict is None:
                    verdict = ("langid_undetermined", f"{side}: declared {declared}, no reliable detection")
            elif tag == declared or self._agrees(tag, declared):
                counts[AGREE] += 1
            else:
                counts[MISMATCH] += 1
                if verdict is None or verdict[0] == "langid_undetermined":
                    verdict = ("langid_mismatch", f"{side}: declared {declared}, detected {tag} ({conf:.2f})")
        return verdict

    def report(self) -> dict:
        out = super().report()
        for side, counts in self.outcomes.items():
            out.update({f"{side}:{name}": n for name, n in zip(OUTCOMES, counts)})
        for side, (agree, bad, _) in self.outcomes.items():
            out[f"{side}:agreement"] = round(agree / (agree + bad), 4) if agree + bad else None
        return out
