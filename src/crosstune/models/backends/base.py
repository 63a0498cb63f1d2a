"""The backend interface: two request kinds, as lm-evaluation-harness keeps it.

Scorers only ever call `loglikelihood` and `generate`, so a task runs unchanged on a local HF model or an
OpenAI-compatible server (where a backend cannot do one kind, it raises a clear error). A local model is sent token
ids rendered by `crosstune.models.prompting.Prompter` (the one renderer, models/render.py); text and messages are
also accepted (rendered with the same renderer: text as `raw`, messages with the model's `auto` template). A server is
sent text or messages; it applies its own chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Union

Messages = list[dict]  # [{"role": "user", "content": "..."}]
Ids = tuple[int, ...]  # token ids from the one renderer (local models only)


@dataclass(frozen=True)
class LoglikRequest:
    """Score `continuation` given `context`: the sum of the continuation tokens' log-probabilities. Both are token
    ids (`Prompter.score`), or both text (raw text: lm-eval's split, the tokenizer's default BOS)."""

    context: Union[str, Ids]
    continuation: Union[str, Ids]


@dataclass(frozen=True)
class LoglikResult:
    logprob: float
    is_greedy: bool  # every continuation token was the argmax


@dataclass(frozen=True)
class GenerateRequest:
    """Prompt token ids (`Prompter.generate`), a raw prompt string, or chat messages (a local backend renders them
    with the model's `auto` template; a server with its own chat template)."""

    prompt: Union[str, Messages, Ids]
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
