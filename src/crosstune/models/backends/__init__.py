"""Backends behind one interface (`loglikelihood`, `generate`), built by name from a spec.

Specs: a dict `{"kind": "hf", "model": "default", "dtype": "float32", "batch_size": 32}`, or a string:
`default`, a model folder/file/hub id (local HF), or `openai:MODEL@BASE_URL` (an OpenAI-compatible server).
"""

from __future__ import annotations

from crosstune.errors import CrosstuneError
from crosstune.models.backends.base import Backend, GenerateRequest, LoglikRequest, LoglikResult


def _hf(**kw):
    from crosstune.models.backends.hf import HFBackend

    return HFBackend(**kw)


def _openai(**kw):
    from crosstune.models.backends.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(**kw)


BACKENDS = {"hf": _hf, "openai": _openai}


def parse_spec(spec: str | dict) -> dict:
    if isinstance(spec, dict):
        return dict(spec)
    if spec.startswith("openai:"):
        model, _, base_url = spec[len("openai:"):].partition("@")
        if not model or not base_url:
            raise CrosstuneError(f"backend {spec!r}: expected openai:MODEL@BASE_URL, e.g. openai:qwen@http://localhost:8000/v1")
        return {"kind": "openai", "model": model, "base_url": base_url}
    return {"kind": "hf", "model": spec}


def build_backend(spec: str | dict, **overrides) -> Backend:
    cfg = {**parse_spec(spec), **{k: v for k, v in overrides.items() if v is not None}}
    kind = cfg.pop("kind", "hf")
    if kind not in BACKENDS:
        raise CrosstuneError(f"backend kind {kind!r}: expected one of {', '.join(BACKENDS)}")
    if kind == "openai":
        cfg.pop("dtype", None)
    try:
        return BACKENDS[kind](**cfg)
    except TypeError as e:
        raise CrosstuneError(f"backend {kind}: bad settings ({e})") from None


__all__ = ["Backend", "GenerateRequest", "LoglikRequest", "LoglikResult", "build_backend", "parse_spec", "BACKENDS"]
