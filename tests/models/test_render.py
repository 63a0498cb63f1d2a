"""The one renderer: training segments and inference prompts agree, per template; `raw` is the user text."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from crosstune.schema import Example, Message
from crosstune.errors import CrosstuneError
from crosstune.models.render import TEMPLATES, generate_ids, render_prompt, render_segments, resolve_template
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
    t = tokenize_example(e, tok, template, "last_turn")
    first = next(i for i, lab in enumerate(t.labels) if lab != IGNORE)
    assert generate_ids(as_dicts(e), template, tok).ids == t.input_ids[:first]


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


# ---- exact CrossIn layouts on rows built by the CrossIn recipe from the shared Alpaca en/zh ---------------------
# The released trainer (Lingy12/CrossIn): templates/*.json are read by `Prompter.generate_prompt`, which formats
# `prompt_input` when the input is a non-empty string, else `prompt_no_input`, always with output_lang=''; the
# collator tokenizes that source (with the tokenizer's special tokens) and then `output + eos` without them.
# The template texts below are the released files' strings; the logic is re-implemented here from that description.
RELEASED = {
    "alpaca": ("Below is an instruction that describes a task, paired with an input that provides further context. "
               "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
               "### Input:\n{input}\n\n### Response:\n {output_lang}",
               "Below is an instruction that describes a task. Write a response that appropriately completes the "
               "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n {output_lang}"),
    "gemma": ("{instruction}\n{input}\n{output_lang}", "{instruction}\n{output_lang}"),
    "llama": ("[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\n{instruction}\n{input}[/INST]{output_lang}",
              "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\n{instruction}[/INST]{output_lang}"),
}


def released_source(template: str, instruction: str, inp: str) -> str:
    with_input, no_input = RELEASED[template]
    if inp:
        return with_input.format(instruction=instruction, input=inp, output_lang="")
    return no_input.format(instruction=instruction, output_lang="")


def released_ids(template: str, fields: dict, tok) -> tuple[list[int], list[int]]:
    source = tok(released_source(template, fields["instruction"], fields["input"]))["input_ids"]
    target = tok(fields["output"] + tok.eos_token, add_special_tokens=False)["input_ids"]
    return source + target, [-100] * len(source) + target


@pytest.fixture(scope="module")
def built_rows(tmp_path_factory) -> dict[str, Example]:
    """One built row per mode (en2x, x2en, translate, base) from a small real CrossIn build."""
    import json

    from crosstune.data.build import build
    from crosstune.data.io import read_examples
    from tests.conftest import REPO, shared_path

    alpaca = str(shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz"))
    out = tmp_path_factory.mktemp("crossin")
    sources = [{"language": x, "path": alpaca, "format": "alpaca", "prefix": f"{x}_"} for x in ("en", "zh")]
    build(REPO / "recipes" / "crossin.yaml", out, overrides=[
        f"sources={json.dumps(sources)}", "recipe.languages=[en, zh]",
        "recipe.modes={base: 40, en2x: 40, x2en: 40, translate: 40}"])
    rows: dict[str, Example] = {}
    for r in read_examples(out / "train.jsonl"):
        mode = r.meta["mode"]
        # prefer rows with an empty Alpaca input: the tag-only input is the layout CrossIn's quirk is about
        if mode not in rows or (mode in ("en2x", "x2en") and r.meta["fields"]["input"].startswith("\n[")):
            rows[mode] = r
    return rows


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def any_tok(request, tok):
    if request.param == "tiny":
        return tok
    return AutoTokenizer.from_pretrained(request.getfixturevalue("default_model_dir"))


@pytest.mark.integration
@pytest.mark.parametrize("template", ["gemma", "llama", "alpaca"])
@pytest.mark.parametrize("mode", ["en2x", "x2en", "translate", "base"])
def test_built_rows_render_as_crossins_released_trainer(built_rows, any_tok, template, mode):
    tok = any_tok
    row = built_rows[mode]
    fields = row.meta["fields"]
    assert row.instruction.content == (f"{fields['instruction']}\n\n{fields['input']}" if fields["input"].strip()
                                       else fields["instruction"])
    if mode in ("en2x", "x2en"):
        assert row.meta["directive"] == "tag" and fields["input"].endswith(f"\n[{row.response.language}]")
    if mode == "translate":
        assert fields["instruction"] == "Translate the following sentence into English."
    prompt, response = render_segments(row, template, tok)
    assert prompt == (released_source(template, fields["instruction"], fields["input"]), False)
    assert response == (fields["output"] + tok.eos_token, True)
    assert render_prompt([m.to_dict() | {"fields": fields} for m in row.prompt_messages], template, tok) == prompt[0]
    t = tokenize_example(row, tok, template, "response")
    assert (t.input_ids, t.labels) == released_ids(template, fields, tok)
