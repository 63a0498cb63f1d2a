"""The pipeline's one model handle: any backend behind `CachedBackend`, with a weights fingerprint as cache
identity, and the seconds spent waiting on model calls (so each block can report its own cost apart)."""

from __future__ import annotations

import time
from pathlib import Path

from crosstune.data.xinstruct.config import ModelConfig
from crosstune.models.backends import GenerateRequest, build_backend, parse_spec
from crosstune.models.cache import CachedBackend, CallCache


def fingerprint_for(spec: str) -> str:
    """HF specs: the weights hash of the resolved folder. `openai:MODEL@URL`: the weights hash when MODEL is a
    file on this machine (llama.cpp's server names models by their .gguf path), else `openai:MODEL`."""
    from crosstune.models.fingerprint import model_fingerprint

    cfg = parse_spec(spec)
    if cfg.get("kind") == "openai":
        model = cfg["model"]
        return model_fingerprint(model) if Path(model).is_file() else f"openai:{model}"
    from crosstune.models.loading import resolve_model

    return model_fingerprint(resolve_model(cfg["model"]))


class ModelHandle:
    """Built on first use, so a run whose every call is cached never loads a model or opens a connection."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.fingerprint = cfg.fingerprint if cfg.fingerprint != "auto" else fingerprint_for(cfg.backend)
        self.cache = CallCache(cfg.cache)
        self.cached = CachedBackend(_LazyBackend(cfg.backend), self.cache, fingerprint=self.fingerprint,
                                    flush_every=1)  # model calls take seconds: keep every one at once
        self.seconds = 0.0  # wall time inside generate() calls (cache lookups included; tiny beside misses)

    @property
    def calls(self) -> int:
        return self.cached.calls

    @property
    def hits(self) -> int:
        return self.cached.hits

    def request(self, prompt: str, max_new_tokens: int, temperature: float = 0.0, seed: int = 0,
                stop: list[str] | tuple[str, ...] = ()) -> GenerateRequest:
        content = [{"role": "user", "content": prompt}] if self.cfg.chat else prompt
        return GenerateRequest(prompt=content, max_new_tokens=max_new_tokens, stop=tuple(stop),
                               temperature=temperature, seed=seed)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        t0 = time.perf_counter()
        try:
            return self.cached.generate(requests)
        finally:
            self.seconds += time.perf_counter() - t0


class _LazyBackend:
    """Builds the real backend on the first request that misses the cache."""

    def __init__(self, spec: str):
        self.spec = spec
        self.name = parse_spec(spec).get("kind", "hf")
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            self._backend = build_backend(self.spec)
        return self._backend

    def generate(self, requests):
        return self.backend.generate(requests)

    def generate_iter(self, requests):
        streaming = getattr(self.backend, "generate_iter", None)
        if streaming is not None:
            yield from streaming(requests)
        else:
            yield from enumerate(self.backend.generate(requests))
