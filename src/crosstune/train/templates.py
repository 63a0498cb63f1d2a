"""Messages -> text segments (prompt or response), before tokenization.

`auto` uses the tokenizer's chat template when it has one, else `alpaca`. Named fallbacks follow CrossIn's
`templates/*.json` (METHODS.md 1.3); its collator always fills `{output_lang}` with '' and so do we.
A segment is `(text, is_response)`; tokenize.py turns segments into ids and a loss mask.
"""

from __future__ import annotations

from crosstune.console import console
from crosstune.data.io import alpaca_user_text
from crosstune.data.schema import Example
from crosstune.errors import CrosstuneError

ALPACA_HEADER = {
    True: "Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n",
    False: "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
}
LLAMA_SYSTEM = "You are a helpful assistant."
NAMED = ("alpaca", "gemma", "llama")
TEMPLATES = ("auto", "chat") + NAMED

Segments = list[tuple[str, bool]]


def resolve_template(name: str, tokenizer) -> str:
    if name not in TEMPLATES:
        raise CrosstuneError(f"tokenize.template {name!r}: expected one of {', '.join(TEMPLATES)}")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if name == "chat" and not has_chat:
        raise CrosstuneError("tokenize.template 'chat': this tokenizer has no chat template; "
                             f"use one of {', '.join(NAMED)}")
    if name == "auto":
        if has_chat:
            return "chat"
        console.print("[yellow]warning:[/] the tokenizer has no chat template; using the 'alpaca' template")
        return "alpaca"
    return name


def render(example: Example, template: str, tokenizer) -> Segments:
    """Split an example into prompt/response text segments; everything after the last assistant turn is dropped."""
    if template == "chat":
        return _chat_segments(example, tokenizer)
    return _named_segments(example, template, tokenizer.eos_token or "")


def _chat(tokenizer, msgs: list[dict], gen: bool) -> str:
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen) if msgs else ""


def _chat_segments(example: Example, tokenizer) -> Segments:
    # Render growing prefixes and take differences, so each span comes from the model's own template text.
    msgs = [{"role": m.role, "content": m.content} for m in example.messages]
    segments: Segments = []
    done = ""
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        prompt = _chat(tokenizer, msgs[:i], gen=True)
        full = _chat(tokenizer, msgs[:i + 1], gen=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise CrosstuneError(f"example {example.id!r}: the chat template does not render conversations "
                                 "prefix by prefix, so the response cannot be located; set tokenize.template "
                                 f"to one of {', '.join(NAMED)}")
        segments += [(prompt[len(done):], False), (full[len(prompt):], True)]
        done = full
    return segments


def _instruction_and_input(content: str, fields: dict | None) -> tuple[str, str]:
    if fields and alpaca_user_text(fields.get("instruction", ""), fields.get("input", "")) == content:
        return fields["instruction"], fields.get("input", "")
    return content, ""


def _named_prompt(template: str, instr: str, inp: str, system: str | None) -> str:
    if template == "llama":
        return f"[INST] <<SYS>>\n{system or LLAMA_SYSTEM}\n<</SYS>>\n\n{instr}\n{inp}[/INST]"
    pre = f"{system}\n\n" if system else ""
    if template == "gemma":
        return f"{pre}{instr}\n{inp}\n"
    with_input = bool(inp.strip())
    body = f"### Instruction:\n{instr}\n\n" + (f"### Input:\n{inp}\n\n" if with_input else "") + "### Response:\n"
    return pre + ALPACA_HEADER[with_input] + body


def _named_segments(example: Example, template: str, eos: str) -> Segments:
    segments: Segments = []
    system = next((m.content for m in example.messages if m.role == "system"), None)
    user = None
    last = example.last_assistant_index()
    single_turn = sum(m.role == "user" for m in example.messages) == 1
    for m in example.messages[:last + 1]:
        if m.role == "user":
            user = m.content
        elif m.role == "assistant":
            fields = example.meta.get("fields") if single_turn else None
            instr, inp = _instruction_and_input(user or "", fields)
            sep = "\n\n" if segments else ""
            segments += [(sep + _named_prompt(template, instr, inp, system if not segments else None), False),
                         (m.content + eos, True)]
            user = None
    return segments
