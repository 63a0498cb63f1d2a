"""The one renderer: a conversation -> text and token ids, for training (ids + loss labels), scoring (context +
continuation ids) and generation (prompt ids), with one BOS rule.

Templates (`TEMPLATES`):
- `auto`: the template recorded in the model's folder by `crosstune train` (models/template_record.py), else the
  tokenizer's chat template when it has one, else `alpaca`.
- `chat`: the tokenizer's chat template (`apply_chat_template`; prompts with `add_generation_prompt=True`).
- `raw`: inference only; the single user message as is (what CrossIn's evaluation sent, METHODS.md 1.3).
- `alpaca`, `gemma`, `llama`: CrossIn's released `templates/*.json` (METHODS.md 1.3), character for character
  (alpaca's "### Response:\n " keeps its trailing space), `{output_lang}` always '' as in its collator; the
  target is `output + eos`. `{instruction}`/`{input}` are the row's structured fields (`meta.fields`, kept by the
  CrossIn builder and by `read_examples` for Alpaca files) when they reproduce the user text, else the user text
  is the instruction and the input is empty.

The BOS rule, written once (`prefix_ids`): text rendered with a chat template is encoded with exactly the special
tokens its text writes (a template's `{{ bos_token }}` is the only BOS; the tokenizer adds none, as transformers'
`apply_chat_template(tokenize=True)` and vLLM's chat endpoint count them); plain text (`raw` and the named
templates) starts with what the tokenizer adds by default (its BOS when it adds one, never an EOS). Never two.
Every piece is encoded on its own, in order (`train_ids`), so the prompt ids of `generate_ids` and the context ids
of `score_ids` are the training ids up to the first trained token of the answer.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.schema import Example, Message, alpaca_user_text

ALPACA_HEADER = {
    True: "Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n",
    False: "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
}
LLAMA_SYSTEM = "You are a helpful assistant."
NAMED = ("alpaca", "gemma", "llama")
TEMPLATES = ("auto", "chat", "raw") + NAMED

Segments = list[tuple[str, bool]]


_warned: set = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        console.print(f"[yellow]warning:[/] {text}")


def resolve_template(name: str, tokenizer) -> str:
    """`auto` -> the template recorded with the model, else `chat` or `alpaca`; errors for unknown names and for
    `chat` without a chat template; a warning when an explicit template differs from the recorded one."""
    from crosstune.models.template_record import recorded_template

    if name not in TEMPLATES:
        raise CrosstuneError(f"template {name!r}: expected one of {', '.join(TEMPLATES)}")
    recorded = recorded_template(tokenizer)
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if name == "auto":
        if recorded:
            return recorded["template"]
        if has_chat:
            return "chat"
        _warn_once("the tokenizer has no chat template; using the 'alpaca' template")
        return "alpaca"
    if recorded and name not in (recorded["template"], "raw"):
        _warn_once(f"{recorded['file']}: field 'template' records {recorded['template']!r} (what the model was "
                   f"trained with), but template {name!r} was asked for; using {name!r}")
    if name == "chat" and not has_chat:
        raise CrosstuneError(f"template 'chat': this tokenizer has no chat template; use one of {', '.join(NAMED)}")
    return name


def render_segments(example: Example, template: str, tokenizer) -> Segments:
    """Split an example into prompt/response text segments; everything after the last assistant turn is dropped."""
    template = resolve_template(template, tokenizer) if template == "auto" else template
    if template == "raw":
        raise CrosstuneError("template 'raw' is for inference only (the user text without any template); "
                             f"train with one of auto, chat, {', '.join(NAMED)}")
    if template == "chat":
        return _chat_segments(_dicts(example.messages), tokenizer, f"example {example.id!r}", open_end=False)
    if template not in NAMED:
        raise CrosstuneError(f"template {template!r}: expected one of {', '.join(TEMPLATES)}")
    return _named_segments(example, template, tokenizer.eos_token or "")


def prompt_segments(messages: list[dict], template: str, tokenizer) -> Segments:
    """The segments before the answer to `messages` (ending with a user turn): earlier answers are the segments
    marked True, exactly as training splits the same conversation. Messages are `{"role", "content"}` dicts; a
    single-turn message may carry `fields` (`{"instruction", "input"}`) for the named templates."""
    template = resolve_template(template, tokenizer) if template == "auto" else template
    if not messages or messages[-1].get("role") != "user":
        raise CrosstuneError("render_prompt: expected messages ending with a user message")
    if template == "raw":
        if len(messages) != 1:
            roles = ", ".join(m.get("role", "?") for m in messages)
            raise CrosstuneError(f"template 'raw' sends one user message as is; got {len(messages)} messages "
                                 f"({roles}); use 'chat' or a named template for conversations")
        return [(messages[0]["content"], False)]
    if template == "chat":
        return _chat_segments(_dicts(messages), tokenizer, "the conversation", open_end=True)
    fields = messages[-1].get("fields")
    example = Example("prompt", [Message(m["role"], m["content"]) for m in messages] + [Message("assistant", "")],
                      meta={"fields": fields} if fields else {})
    return render_segments(example, template, tokenizer)[:-1]


def render_prompt(messages: list[dict], template: str, tokenizer) -> str:
    """The text a model is given at inference for `messages`: everything training puts before the response."""
    return "".join(text for text, _ in prompt_segments(messages, template, tokenizer))


def _dicts(messages) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} if isinstance(m, dict) else
            {"role": m.role, "content": m.content} for m in messages]


def _chat(tokenizer, msgs: list[dict], gen: bool) -> str:
    if not msgs:
        return ""
    try:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    except Exception as e:  # jinja2's TemplateError, or the template's own raise_exception
        from crosstune.models.template_record import template_source

        roles = ", ".join(m["role"] for m in msgs)
        raise CrosstuneError(f"{template_source(tokenizer)}: the chat template cannot render a conversation of "
                             f"({roles}): {e}") from None


def _chat_segments(msgs: list[dict], tokenizer, what: str, open_end: bool) -> Segments:
    # Render growing prefixes and take differences, so each span comes from the model's own template text.
    segments: Segments = []
    done = ""
    ends = [i for i, m in enumerate(msgs) if m["role"] == "assistant"] + ([len(msgs)] if open_end else [])
    for i in ends:
        prompt = _chat(tokenizer, msgs[:i], gen=True)
        full = _chat(tokenizer, msgs[:i + 1], gen=False) if i < len(msgs) else prompt
        if not (prompt.startswith(done) and full.startswith(prompt)):
            if open_end:  # nothing is trained on an inference prompt: the template's text as a whole
                return [(_chat(tokenizer, msgs, gen=True), False)]
            from crosstune.models.template_record import template_source

            raise CrosstuneError(f"{what}: the chat template ({template_source(tokenizer)}) does not render "
                                 "conversations prefix by prefix, so the response cannot be located; use one of "
                                 f"{', '.join(NAMED)} (tokenize.template in training, --template in evaluation)")
        segments.append((prompt[len(done):], False))
        if i < len(msgs):
            segments.append((full[len(prompt):], True))
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


# ---- token ids: one BOS rule for every purpose ------------------------------------------------------------------
IGNORE = -100  # the label of a token that carries no loss
PURPOSES = ("train", "score", "generate")
EMPTY_CONTEXT = ("start", "authors")


@dataclass
class Rendered:
    """Token ids for one purpose: `train` (ids + labels), `score` (ids = context + continuation, `context_length`)
    or `generate` (the prompt ids); `text` is what the ids spell (special tokens included)."""

    ids: list[int]
    tokenizer: object = field(repr=False, compare=False)
    labels: list[int] | None = None
    context_length: int | None = None

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids)

    @property
    def bos_count(self) -> int:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return sum(1 for i in self.ids if i == bos) if bos is not None else 0


_prefixes: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def default_prefix(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before plain text by default: its BOS when it adds one, else none."""
    try:
        return list(_prefixes[tokenizer])
    except (KeyError, TypeError):
        pass
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    found = next((full[:k] for k in range(len(full) - len(plain) + 1) if full[k:k + len(plain)] == plain), [])
    try:
        _prefixes[tokenizer] = tuple(found)
    except TypeError:  # not weak-referenceable: computed each time
        pass
    return list(found)


def prefix_ids(template: str, tokenizer) -> list[int]:
    """THE BOS rule: a chat template's text carries its own BOS tokens (none added); plain text gets the
    tokenizer's default prefix. `template` is resolved (not `auto`)."""
    return [] if template == "chat" else default_prefix(tokenizer)


def adds_bos(tokenizer) -> bool:
    """Whether plain text (raw, alpaca, gemma, llama) starts with a BOS for this tokenizer."""
    return bool(default_prefix(tokenizer))


def encode(text: str, tokenizer) -> list[int]:
    """Plain ids of a piece of rendered text: special tokens the text spells are parsed, none are added."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def _join(prefix: list[int], segments: Segments, tokenizer) -> tuple[list[int], list[list[int]]]:
    pieces = [encode(text, tokenizer) for text, _ in segments]
    return prefix + [i for p in pieces for i in p], pieces


def train_ids(example: Example, template: str, tokenizer, loss_on: str = "response") -> Rendered:
    """Training ids and labels (IGNORE where no loss): `loss_on` response, last_turn or all."""
    template = resolve_template(template, tokenizer)
    try:
        example.last_assistant_index()
    except ValueError as e:
        raise CrosstuneError(str(e)) from None
    segments = render_segments(example, template, tokenizer)
    prefix = prefix_ids(template, tokenizer)
    ids, pieces = _join(prefix, segments, tokenizer)
    labels = [IGNORE] * len(prefix)
    last_response = max(i for i, (_, r) in enumerate(segments) if r)
    for i, ((_, is_response), piece) in enumerate(zip(segments, pieces)):
        trained = loss_on == "all" or (is_response and (loss_on == "response" or i == last_response))
        labels += piece if trained else [IGNORE] * len(piece)
    return Rendered(ids, tokenizer, labels=labels)


def generate_ids(messages: list[dict], template: str, tokenizer) -> Rendered:
    """The prompt ids a model is given to answer `messages` (ending with a user turn): the training ids up to the
    first trained token of that answer."""
    template = resolve_template(template, tokenizer)
    ids, _ = _join(prefix_ids(template, tokenizer), prompt_segments(messages, template, tokenizer), tokenizer)
    return Rendered(ids, tokenizer)


def score_ids(messages: list[dict], continuation: str, template: str, tokenizer,
              empty_context: str = "start") -> Rendered:
    """Context + continuation ids for log-likelihood scoring of `continuation` as the answer to `messages`.

    Templated contexts are the generation prompt ids and the continuation is encoded on its own, as training encodes
    a response. `raw` follows lm-evaluation-harness: trailing context whitespace moves into the continuation, whose
    ids are `enc(context + continuation)[len(enc(context)):]`. An empty raw context (whole-sentence scoring):
    `start` conditions on the tokenizer's default prefix (its BOS), or, when it adds none, on lm-eval's prefix token
    (the tokenizer's BOS token if it has one, else its EOS), so every token of the text is scored; `authors` is
    RankC's main.py: the tokenizer's own encoding of the text, the first token as context and the rest scored."""
    if empty_context not in EMPTY_CONTEXT:
        raise CrosstuneError(f"empty context rule {empty_context!r}: expected one of {', '.join(EMPTY_CONTEXT)}")
    template = resolve_template(template, tokenizer)
    if template != "raw":
        ctx = generate_ids(messages, template, tokenizer).ids
        cont = encode(continuation, tokenizer)
    else:
        prompt_segments(messages, "raw", tokenizer)  # one user message
        ctx, cont = _raw_pair(messages[0]["content"], continuation, tokenizer, empty_context)
    if not cont:
        raise CrosstuneError(f"empty continuation after tokenization: {continuation!r}")
    ids = ctx + cont
    return Rendered(ids, tokenizer, context_length=len(ctx))


def _raw_pair(context: str, continuation: str, tokenizer, empty_context: str) -> tuple[list[int], list[int]]:
    prefix = default_prefix(tokenizer)
    if not context and empty_context == "authors":
        ids = prefix + encode(continuation, tokenizer)
        return ids[:1], ids[1:]
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:  # as lm-eval: "Answer: " + "B" is scored as "Answer:" + " B"
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    plain = encode(context, tokenizer)
    cont = encode(context + continuation, tokenizer)[len(plain):]
    ctx = prefix + plain
    if not ctx:  # no document start written by the tokenizer: lm-eval's prefix token
        bos = tokenizer.bos_token_id
        ctx = [bos if bos is not None else tokenizer.eos_token_id]
    return ctx, cont


def render_ids(messages: list[dict], purpose: str, template: str, tokenizer, loss_on: str = "response",
               empty_context: str = "start") -> Rendered:
    """One conversation for one purpose: `train` and `score` take the last assistant message as the answer;
    `generate` answers the messages before it (or all of them when the last is a user turn)."""
    if purpose not in PURPOSES:
        raise CrosstuneError(f"purpose {purpose!r}: expected one of {', '.join(PURPOSES)}")
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if purpose == "generate":
        return generate_ids(messages[:last] if last is not None else messages, template, tokenizer)
    if last is None:
        raise CrosstuneError(f"purpose {purpose!r} needs an assistant message (the answer); got none")
    if purpose == "score":
        return score_ids(messages[:last], messages[last]["content"], template, tokenizer, empty_context)
    fields = next((m.get("fields") for m in messages if m.get("fields")), None)
    example = Example("render", [Message(m["role"], m["content"]) for m in messages[:last + 1]],
                      meta={"fields": fields} if fields else {})
    return train_ids(example, template, tokenizer, loss_on)
