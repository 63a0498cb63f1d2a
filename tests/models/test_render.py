"""The one renderer: training segments and inference prompts agree, per template; `raw` is the user text."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError
from crosstune.models.render import TEMPLATES, prompt_ids, render_prompt, render_segments, resolve_template
from crosstune.train.tokenize import IGNORE, tokenize_example


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def ex(*turns, system=None, meta=None) -> Example:
    roles = ["user", "assistant"] * len(turns)
    msgs = [Message("system", system)] if system else []
    return Example("x", msgs + [Message(r, t, "en") for r, t in zip(roles, turns)], meta=meta or {})


def as_dicts(e: Example) -> list[dict]:
    return [{"role": m.role, "content": m.content} for m in e.prompt_messages]


def test_api_names():
    assert TEMPLATES == ("auto", "chat", "raw", "alpaca", "gemma", "llama")


@pytest.mark.parametrize("template", ["chat", "alpaca", "gemma", "llama"])
@pytest.mark.parametrize("turns", [("Hi", "Yo"), ("Hi", "Yo", "Two?", "2")])
@pytest.mark.parametrize("system", [None, "Be brief."])
def test_prompt_is_what_training_puts_before_the_response(tok, template, turns, system):
    e = ex(*turns, system=system)
    segments = render_segments(e, template, tok)
    prompt = render_prompt(as_dicts(e), template, tok)
    assert prompt == "".join(t for t, _ in segments[:-1])
    # the token ids a model gets at inference are the training ids up to the first trained token of the answer
    t = tokenize_example(e, tok, template, "last_turn", bos=template != "chat" and tok.bos_token_id is not None
                         and tok("a")["input_ids"][:1] == [tok.bos_token_id])
    first = next(i for i, lab in enumerate(t.labels) if lab != IGNORE)
    assert prompt_ids(prompt, template, tok) == t.input_ids[:first]


def test_chat_prompt_is_the_generation_prompt(tok):
    msgs = [{"role": "user", "content": "Hi"}]
    assert render_prompt(msgs, "chat", tok) == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert render_prompt(msgs, "auto", tok) == render_prompt(msgs, "chat", tok)


def test_raw_is_the_user_text_as_is(tok):
    text = "Question:\nWhat?\n\nAnswer:\n"
    assert render_prompt([{"role": "user", "content": text}], "raw", tok) == text
    with pytest.raises(CrosstuneError, match="one user message"):
        render_prompt([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "raw", tok)
    with pytest.raises(CrosstuneError, match="inference only"):
        render_segments(ex("Hi", "Yo"), "raw", tok)


def test_named_prompt_uses_structured_fields(tok):
    msgs = [{"role": "user", "content": "Name a color.\n\n\n[zh]",
             "fields": {"instruction": "Name a color.", "input": "\n[zh]"}}]
    assert render_prompt(msgs, "gemma", tok) == "Name a color.\n\n[zh]\n"


def test_resolution_and_errors(tok):
    assert resolve_template("auto", tok) == "chat"
    with pytest.raises(CrosstuneError, match="expected one of"):
        resolve_template("vicuna", tok)
    with pytest.raises(CrosstuneError, match="ending with a user message"):
        render_prompt([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "chat", tok)
