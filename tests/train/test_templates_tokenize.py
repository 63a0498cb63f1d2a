"""Messages -> segments -> ids/labels: the loss mask covers exactly the response text, per `loss_on`."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from crosstune.data.schema import Example, Message
from crosstune.errors import CrosstuneError
from crosstune.models.render import render_segments as render, resolve_template
from crosstune.train.tokenize import IGNORE, tokenize_all, tokenize_example


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def ex(*turns, meta=None) -> Example:
    roles = ["user", "assistant"] * len(turns)
    return Example("x", [Message(r, t, "en") for r, t in zip(roles, turns)], meta=meta or {"mode": "base"})


def trained_text(tok, t) -> str:
    return tok.decode([i for i, lab in zip(t.input_ids, t.labels) if lab != IGNORE])


def test_chat_template_masks_only_responses(tok):
    t = tokenize_example(ex("Hi", "Yo", "Two?", "2"), tok, "chat", "response")
    assert tok.decode(t.input_ids) == tok.apply_chat_template(
        [{"role": r, "content": c} for r, c in [("user", "Hi"), ("assistant", "Yo"), ("user", "Two?"),
                                                ("assistant", "2")]], tokenize=False)
    assert trained_text(tok, t) == "Yo<|im_end|>\n2<|im_end|>\n"
    assert trained_text(tok, tokenize_example(ex("Hi", "Yo", "Two?", "2"), tok, "chat", "last_turn")) == "2<|im_end|>\n"
    t_all = tokenize_example(ex("Hi", "Yo"), tok, "chat", "all")
    assert t_all.labels == t_all.input_ids


def test_crossin_named_templates(tok):
    e = ex("Name a color.\n\n\n[zh]", "红色", meta={"fields": {"instruction": "Name a color.", "input": "\n[zh]"}})
    assert render(e, "gemma", tok) == [("Name a color.\n\n[zh]\n", False), ("红色<|im_end|>", True)]
    llama = render(e, "llama", tok)[0][0]
    assert llama == "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nName a color.\n\n[zh][/INST]"
    alpaca = render(ex("Say hi", "hi"), "alpaca", tok)[0][0]
    assert alpaca.endswith("### Instruction:\nSay hi\n\n### Response:\n ") and "### Input" not in alpaca
    # no input: CrossIn's prompt_no_input layouts (no empty input line)
    assert render(ex("Say hi", "hi"), "gemma", tok)[0][0] == "Say hi\n"
    assert render(ex("Say hi", "hi"), "llama", tok)[0][0].endswith("<</SYS>>\n\nSay hi[/INST]")


def test_template_resolution(tok):
    assert resolve_template("auto", tok) == "chat"
    with pytest.raises(CrosstuneError, match="expected one of"):
        resolve_template("vicuna", tok)


def test_overlong_rows_are_truncated_or_dropped_and_counted(tok):
    rows = [ex("short", "ok"), ex("q" * 80, "long answer"), ex("q", "a" * 80)]
    kept, stats = tokenize_all(rows, tok, "chat", "response", 40, "truncate")
    assert stats["truncated"] == 2 and stats["dropped_no_target"] == 1 and stats["kept"] == 2
    assert all(len(t.input_ids) <= 40 for t in kept)
    kept, stats = tokenize_all(rows, tok, "chat", "response", 40, "drop")
    assert stats["dropped_too_long"] == 2 and len(kept) == 1


def test_empty_dataset_and_all_dropped_are_errors(tok):
    with pytest.raises(CrosstuneError, match="empty"):
        tokenize_all([], tok, "chat", "response", 40, "truncate")
    with pytest.raises(CrosstuneError, match="all 1 rows were dropped"):
        tokenize_all([ex("q" * 80, "a")], tok, "chat", "response", 40, "drop")


def test_trained_template_travels_with_the_model(tmp_path, capsys, tiny_model_dir, mixture_file):
    """`template: alpaca` is recorded in adapter/ and merged/; the merged tokenizer's chat template renders the same
    ids; `eval generate` with no --template uses it and records it."""
    import json

    from crosstune.models.render import generate_ids
    from crosstune.models.template_record import TEMPLATE_FILE
    from tests.conftest import run_main

    out = tmp_path / "out"
    c = {"data": str(mixture_file), "output_dir": str(out), "model": {"name": str(tiny_model_dir)},
         "tokenize": {"max_length": 400, "template": "alpaca"}, "batch": {"size": 2}, "precision": "fp32",
         "max_steps": 1, "merge": True}
    (tmp_path / "c.json").write_text(json.dumps(c))
    code, cap = run_main(["train", str(tmp_path / "c.json")], capsys)
    assert code == 0, cap.err
    for folder in ("adapter", "merged"):
        assert json.loads((out / folder / TEMPLATE_FILE).read_text()) == {"template": "alpaca", "system": None}
    tok = AutoTokenizer.from_pretrained(out / "merged")
    msgs = [{"role": "user", "content": "Name a color."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert list(ids) == generate_ids(msgs, "alpaca", tok).ids
    assert tok.decode(ids).endswith("### Instruction:\nName a color.\n\n### Response:\n ")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "1", "prompt": "Name a color."}) + "\n")
    run_dir = tmp_path / "gen"
    code, cap = run_main(["eval", "generate", "--model", str(out / "merged"), "--prompts", f"en={prompts}",
                          "--out", str(run_dir), "--max-new-tokens", "2", "--cache", str(tmp_path / "c.sqlite")],
                         capsys)
    assert code == 0, cap.err
    assert json.loads((run_dir / "run.json").read_text())["template"] == "alpaca"
