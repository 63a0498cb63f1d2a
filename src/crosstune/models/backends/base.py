"""The backend interface: two request kinds, as lm-evaluation-harness keeps it.

Scorers only ever call `loglikelihood` and `generate`, so a task runs unchanged on a local HF model or an
OpenAI-compatible server (where a backend cannot do one kind, it raises a clear error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Union

Messages = list[dict]  # [{"role": "user", "content": "..."}]


@dataclass(frozen=True)
class LoglikRequest:
    """Score `continuation` given `context`: the sum of the continuation tokens' log-probabilities."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikResult:
    logprob: float
    is_greedy: bool  # every continuation token was the argmax


@dataclass(frozen=True)
class GenerateRequest:
    """A raw prompt string, or chat messages that the backend renders with the model's chat template."""

    prompt: Union[str, Messages]
    max_new_tokens: int = 128
    stop: tuple[str, ...] = field(default_factory=tuple)
    temperature: float = 0.0  # 0 = greedy
    seed: int = 0
    top_p: float = 1.0  # nucleus sampling (only with temperature > 0)


class Backend(Protocol):
    name: str

    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]: ...

    def generate(self, requests: list[GenerateRequest]) -> list[str]: ...


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` at the earliest stop string (the stop string itself is dropped)."""
    cut = len(text)
    for s in stop:
        i = text.find(s) if s else -1
        if i != -1:
            cut = min(cut, i)
    return text[:cut]
