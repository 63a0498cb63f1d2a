"""What a backend is sent for a conversation: token ids from the one renderer (models/render.py) for a local model,
messages or plain text for an OpenAI-compatible server (the server applies its own chat template).

Scorers, `eval generate`, judges and the data pipelines' local models build their requests through a `Prompter`,
so the template and the BOS rule are the same as in training; request ids make the call cache's key exact.
"""

from __future__ import annotations

from crosstune.errors import CrosstuneError
from crosstune.models.render import TEMPLATES, generate_ids, render_prompt, resolve_template, score_ids


class Prompter:
    """`template` is a name of `TEMPLATES`; `bind` it to a backend (or a tokenizer) before use."""

    def __init__(self, template: str = "auto"):
        if template not in TEMPLATES:
            raise CrosstuneError(f"--template {template!r}: expected one of {', '.join(TEMPLATES)}")
        self.template, self.resolved, self.tok = template, template, None

    def bind(self, backend=None, tokenizer=None) -> "Prompter":
        """A local backend exposes its tokenizer as `tok`; a server has none."""
        self.tok = tokenizer if tokenizer is not None else getattr(backend, "tok", None)
        if self.tok is not None:
            self.resolved = resolve_template(self.template, self.tok)
        return self

    @property
    def local(self) -> bool:
        return self.tok is not None

    def _server_check(self, generation: bool) -> None:
        if self.template == "raw" or (generation and self.template in ("auto", "chat")):
            return
        raise CrosstuneError(f"template {self.template!r} needs the model's tokenizer; this backend is a server, "
                             "which applies its own chat template (use --template raw, or auto/chat for generation)")

    def generate(self, messages: list[dict]):
        """The prompt of a `GenerateRequest`: ids (local), else messages (auto/chat) or the user text (raw)."""
        if self.tok is not None:
            return tuple(generate_ids(messages, self.resolved, self.tok).ids)
        self._server_check(generation=True)
        if self.template == "raw":
            return render_prompt(messages, "raw", None)
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def score(self, messages: list[dict], continuation: str, empty_context: str = "start"):
        """(context, continuation) of a `LoglikRequest`: ids for a local model, text for a server (raw only)."""
        if self.tok is not None:
            r = score_ids(messages, continuation, self.resolved, self.tok, empty_context)
            return tuple(r.ids[:r.context_length]), tuple(r.ids[r.context_length:])
        self._server_check(generation=False)
        return render_prompt(messages, "raw", None), continuation

    def user(self, text: str) -> list[dict]:
        return [{"role": "user", "content": text}]

    def text(self, messages: list[dict]) -> str:
        """The prompt text the model is given (for records)."""
        if self.tok is None:
            return render_prompt(messages, "raw", None) if self.template == "raw" else messages[-1]["content"]
        return render_prompt(messages, self.resolved, self.tok)
