"""The one prompt renderer: messages -> the text a model is trained on (segments) or given at inference (prompt).

Templates (`TEMPLATES`):
- `auto`: the tokenizer's chat template when it has one, else `alpaca`.
- `chat`: the tokenizer's chat template (`apply_chat_template`; prompts with `add_generation_prompt=True`).
- `raw`: inference only; the single user message as is (what CrossIn's evaluation sent, METHODS.md 1.4).
- `alpaca`, `gemma`, `llama`: CrossIn's released `templates/*.json` (METHODS.md 1.3), character for character
  (alpaca's "### Response:\n " keeps its trailing space), `{output_lang}` always '' as in its collator; the
  target is `output + eos`. `{instruction}`/`{input}` are the row's structured fields (`meta.fields`, kept by the
  CrossIn builder and by `read_examples` for Alpaca files) when they reproduce the user text, else the user text
  is the instruction and the input is empty.

`render_segments` gives `(text, is_response)` pieces for training (tokenize.py masks the loss with them);
`render_prompt` gives the text up to where the assistant's answer starts, the same characters training put before
the response. `prompt_ids` encodes a prompt with the BOS rule training uses.
"""

from __future__ import annotations

from crosstune.console import console
from crosstune.data.formats import alpaca_user_text
from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError

ALPACA_HEADER = {
    True: "Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n",
    False: "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
}
LLAMA_SYSTEM = "You are a helpful assistant."
NAMED = ("alpaca", "gemma", "llama")
TEMPLATES = ("auto", "chat", "raw") + NAMED

Segments = list[tuple[str, bool]]


def resolve_template(name: str, tokenizer) -> str:
    """`auto` -> `chat` or `alpaca`; errors for unknown names and for `chat` without a chat template."""
    if name not in TEMPLATES:
        raise CrosstuneError(f"template {name!r}: expected one of {', '.join(TEMPLATES)}")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if name == "chat" and not has_chat:
        raise CrosstuneError(f"template 'chat': this tokenizer has no chat template; use one of {', '.join(NAMED)}")
    if name == "auto":
        if has_chat:
            return "chat"
        console.print("[yellow]warning:[/] the tokenizer has no chat template; using the 'alpaca' template")
        return "alpaca"
    return name


def render_segments(example: Example, template: str, tokenizer) -> Segments:
    """Split an example into prompt/response text segments; everything after the last assistant turn is dropped."""
    template = resolve_template(template, tokenizer) if template == "auto" else template
    if template == "raw":
        raise CrosstuneError("template 'raw' is for inference only (the user text without any template); "
                             f"train with one of auto, chat, {', '.join(NAMED)}")
    if template == "chat":
        return _chat_segments(example, tokenizer)
    if template not in NAMED:
        raise CrosstuneError(f"template {template!r}: expected one of {', '.join(TEMPLATES)}")
    return _named_segments(example, template, tokenizer.eos_token or "")


def render_prompt(messages: list[dict], template: str, tokenizer) -> str:
    """The text a model is given at inference for `messages` (ending with a user turn): everything training puts
    before the response. Messages are `{"role", "content"}` dicts; a single-turn message may carry `fields`
    (`{"instruction", "input"}`) for the named templates."""
    template = resolve_template(template, tokenizer) if template == "auto" else template
    if not messages or messages[-1].get("role") != "user":
        raise CrosstuneError("render_prompt: expected messages ending with a user message")
    if template == "raw":
        if len(messages) != 1:
            roles = ", ".join(m.get("role", "?") for m in messages)
            raise CrosstuneError(f"template 'raw' sends one user message as is; got {len(messages)} messages "
                                 f"({roles}); use 'chat' or a named template for conversations")
        return messages[0]["content"]
    if template == "chat":
        return _chat(tokenizer, [{"role": m["role"], "content": m["content"]} for m in messages], gen=True)
    fields = messages[-1].get("fields")
    example = Example("prompt", [Message(m["role"], m["content"]) for m in messages] + [Message("assistant", "")],
                      meta={"fields": fields} if fields else {})
    segments = render_segments(example, template, tokenizer)
    return "".join(text for text, _ in segments[:-1])


def adds_bos(tokenizer) -> bool:
    """Named templates are plain text: a BOS goes first only when the tokenizer itself adds one by default."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def prompt_ids(text: str, template: str, tokenizer) -> list[int]:
    """Token ids of a rendered prompt, as training encodes the same text (chat templates carry their own BOS)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if template not in ("chat", "auto") and adds_bos(tokenizer):
        return [tokenizer.bos_token_id] + ids
    return ids


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
    """CrossIn's `Prompter.generate_prompt(instruction, input, output_lang='')`: the with-input layout exactly when
    the input is a non-empty string (a tag-only input such as "\n[zh]" counts). A system message (not in CrossIn)
    replaces the llama system prompt and goes before the other two."""
    with_input = inp != ""
    if template == "llama":
        body = f"{instr}\n{inp}" if with_input else instr
        return f"[INST] <<SYS>>\n{system or LLAMA_SYSTEM}\n<</SYS>>\n\n{body}[/INST]"
    pre = f"{system}\n\n" if system else ""
    if template == "gemma":
        return pre + (f"{instr}\n{inp}\n" if with_input else f"{instr}\n")
    body = f"### Instruction:\n{instr}\n\n" + (f"### Input:\n{inp}\n\n" if with_input else "") + "### Response:\n "
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
