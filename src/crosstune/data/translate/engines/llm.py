"""An LLM as translator: any chat model behind an OpenAI-compatible server (vLLM, llama.cpp, a hosted API).

Requests go through `build_backend` and the one call cache (`CachedBackend`), so a segment is sent once per
(model, prompt, text); the prompt is configurable (`engine.prompt`, with {source_language}, {target_language} and
{text}). Concurrency is the backend's (`engine.concurrency`, passed on when the backend takes it).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from crosstune.errors import CrosstuneError
from crosstune.languages import get_language

DEFAULT_PROMPT = [
    {"role": "system", "content": "You are a professional translator. Reply with the translation only."},
    {"role": "user", "content": "Translate this {source_language} text into {target_language}. Copy markers "
                                "like XX0XX, numbers, code and URLs unchanged.\n\n{text}"},
]


class LLMEngine:
    kind = "llm"
    cached = True

    def __init__(self, cfg, cache):
        from crosstune.models.backends import cached_backend, parse_spec
        from crosstune.models.backends.openai_compat import OpenAICompatBackend

        if not cfg.model:
            raise CrosstuneError("engine llm: set engine.model to openai:MODEL@BASE_URL")
        spec = parse_spec(cfg.model)
        if spec.get("kind") != "openai":
            raise CrosstuneError(f"engine llm: model {cfg.model!r} must be openai:MODEL@BASE_URL (a server)")
        accepted = inspect.signature(OpenAICompatBackend.__init__).parameters
        if "concurrency" in accepted:
            spec["concurrency"] = cfg.concurrency
        self.cfg = cfg
        self.model = cfg.model
        self.limit = cfg.max_length or 1500  # characters per segment
        self.prompt = cfg.prompt or DEFAULT_PROMPT
        for m in self.prompt:
            if set(m) != {"role", "content"} or "{text}" not in "".join(x["content"] for x in self.prompt):
                raise CrosstuneError("engine.prompt: expected a list of {role, content} messages, one holding {text}")
        self.backend = cached_backend(spec, cache, fingerprint=f"llm:{cfg.model}")

    @property
    def calls(self) -> int:
        return self.backend.calls

    @property
    def hits(self) -> int:
        return self.backend.hits

    def fingerprint(self) -> str:
        return f"llm:{self.model}"

    def settings(self) -> dict:
        return {"prompt": self.prompt, "max_new_tokens": self.cfg.max_new_tokens}

    def supports(self, source: str, target: str) -> bool:
        return True

    def check_pair(self, source: str, target: str) -> None:
        get_language(source), get_language(target)

    def measure(self, text: str) -> int:
        return len(text)

    def request(self, text: str, source: str, target: str):
        from crosstune.models.backends.base import GenerateRequest

        names = {"source_language": get_language(source).name, "target_language": get_language(target).name,
                 "text": text}
        messages = [{"role": m["role"], "content": _fill(m["content"], names)} for m in self.prompt]
        return GenerateRequest(prompt=messages, max_new_tokens=self.cfg.max_new_tokens, temperature=0.0)

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]:
        step = max(1, self.cfg.batch_size)
        for start in range(0, len(texts), step):
            chunk = texts[start:start + step]
            outs = self.backend.generate([self.request(t, source, target) for t in chunk])
            for j, out in enumerate(outs):
                yield start + j, (out or "").strip()


def _fill(template: str, names: dict) -> str:
    """str.format for the three names only, so braces elsewhere in a prompt need no escaping."""
    out = template
    for k, v in names.items():  # {text} last: a text may contain the other names
        out = out.replace("{" + k + "}", v)
    return out
