"""The base data model every package shares: an example is a list of chat messages, each with a language, plus id,
source and meta. It imports nothing from crosstune, so models/, data/, train/ and eval/ can all build on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")


def alpaca_user_text(instruction: str, inp: str) -> str:
    """The one user message an Alpaca row's instruction and input become (the input after a blank line)."""
    return f"{instruction}\n\n{inp}" if inp.strip() else instruction


@dataclass(slots=True)
class Message:
    role: str
    content: str
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "language": self.language}


@dataclass(slots=True)
class Example:
    id: str
    messages: list[Message]
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_messages(self) -> list[Message]:
        """All messages before the last assistant turn."""
        last = self.last_assistant_index()
        return self.messages[:last]

    @property
    def response(self) -> Message:
        return self.messages[self.last_assistant_index()]

    @property
    def instruction(self) -> Message:
        """The last user message before the final response."""
        return next(m for m in reversed(self.prompt_messages) if m.role == "user")

    def last_assistant_index(self) -> int:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "assistant":
                return i
        raise ValueError(f"example {self.id!r} has no assistant message")

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "messages": [m.to_dict() for m in self.messages]}
        if self.source is not None:
            row["source"] = self.source
        row["meta"] = self.meta
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Example":
        msgs = [Message(m["role"], m["content"], m.get("language")) for m in row["messages"]]
        return cls(id=str(row["id"]), messages=msgs, source=row.get("source"), meta=dict(row.get("meta") or {}))
