"""Backends behind one interface (`loglikelihood`, `generate`), built by name from a spec.

Specs: a dict `{"kind": "hf", "model": "default", "dtype": "float32", "batch_size": 32}`, or a string:
`default`, a model folder/file/hub id (local HF), `openai:MODEL@BASE_URL` (an OpenAI-compatible server), or
`package.module:Object`, a user's backend class or factory (through `crosstune.registry`; importing it runs its
code). A user's backend is called with the spec's other keys and the settings its signature takes (`dtype`,
`batch_size`, ...); it must have `loglikelihood` and `generate`, and should have a `fingerprint` string (what
the call cache keys its answers by).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from crosstune.errors import CrosstuneError
from crosstune.models.backends.base import Backend, GenerateRequest, LoglikRequest, LoglikResult
from crosstune.registry import Registry, is_component_path


def _hf(**kw):
    from crosstune.models.backends.hf import HFBackend

    return HFBackend(**kw)


def _openai(**kw):
    from crosstune.models.backends.openai_compat import OpenAICompatBackend

    kw.pop("dtype", None)
    return OpenAICompatBackend(**kw)


BACKENDS = {"hf": _hf, "openai": _openai}
REGISTRY = Registry("backend", BACKENDS, callable,
                    "a class or factory returning an object with loglikelihood(requests) and generate(requests)")


def parse_spec(spec: str | dict) -> dict:
    if isinstance(spec, dict):
        return dict(spec)
    if spec.startswith("openai:"):
        model, _, base_url = spec[len("openai:"):].partition("@")
        if not model or not base_url:
            raise CrosstuneError(f"backend {spec!r}: expected openai:MODEL@BASE_URL, "
                                 "e.g. openai:qwen@http://localhost:8000/v1")
        return {"kind": "openai", "model": model, "base_url": base_url}
    if is_component_path(spec) and not Path(spec).expanduser().exists():
        return {"kind": spec}
    return {"kind": "hf", "model": spec}


def build_backend(spec: str | dict, **overrides) -> Backend:
    cfg = {**parse_spec(spec), **{k: v for k, v in overrides.items() if v is not None}}
    kind = cfg.pop("kind", "hf")
    factory = REGISTRY.get(kind, "backend kind")
    if kind not in BACKENDS:
        cfg = _accepted(factory, cfg, overrides)
    try:
        backend = factory(**cfg)
    except TypeError as e:
        raise CrosstuneError(f"backend {kind}: bad settings ({e})") from None
    if not all(callable(getattr(backend, m, None)) for m in ("loglikelihood", "generate")):
        raise CrosstuneError(f"backend kind {kind!r}: {REGISTRY.expected}; it returned a {type(backend).__name__}")
    return backend


def cached_backend(spec: str | dict, cache=None, *, fingerprint=None, **settings):
    """`build_backend(spec, **settings)` behind the one model-call cache (`crosstune.models.cache`): `cache` is a
    `CallCache`, its file, or None for the default file; `fingerprint` a string or a function of the built
    backend (default: the backend's own)."""
    from crosstune.models.cache import CachedBackend, CallCache

    backend = build_backend(spec, **settings)
    store = cache if isinstance(cache, CallCache) else CallCache(cache)
    return CachedBackend(backend, store, fingerprint=fingerprint(backend) if callable(fingerprint) else fingerprint)


def _accepted(factory, cfg: dict, overrides: dict) -> dict:
    """A user's factory gets the spec's keys, and of the caller's settings only those its signature names."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return cfg
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cfg
    return {k: v for k, v in cfg.items() if k in params or k not in overrides}


__all__ = ["Backend", "GenerateRequest", "LoglikRequest", "LoglikResult", "build_backend", "cached_backend", "parse_spec",
           "BACKENDS"]
