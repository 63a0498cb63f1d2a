"""The trained template travels with the model: the record is read back by `auto`, an explicit other template
warns, and the Jinja `chat_template` written for a named template renders the same ids through apply_chat_template."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer

from crosstune.errors import CrosstuneError
from crosstune.models.render import generate_ids, render_ids, resolve_template
from crosstune.models.template_record import TEMPLATE_FILE, record_template, recorded_template
from tests.conftest import run_main
from tests.models.families import LLAMA31, QWEN25, build_family

CONVS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("record")
    return {f.name: build_family(f, root / f.name) for f in (LLAMA31, QWEN25)}


@pytest.mark.parametrize("family", ["llama3.1-instruct", "qwen2.5-instruct"])
@pytest.mark.parametrize("template", ["alpaca", "gemma", "llama"])
def test_recorded_named_template_is_the_saved_chat_template(bases, tmp_path, family, template):
    folder = tmp_path / "merged"
    shutil.copytree(bases[family], folder)
    record_template(folder, template, AutoTokenizer.from_pretrained(bases[family]))
    tok = AutoTokenizer.from_pretrained(folder)
    assert recorded_template(tok)["template"] == template and resolve_template("auto", tok) == template
    for conv in CONVS:
        prompt = tok.apply_chat_template(conv[:-1], add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        assert list(prompt) == generate_ids(conv[:-1], template, tok).ids == generate_ids(conv[:-1], "chat", tok).ids
        assert tok.apply_chat_template(conv, tokenize=False) == render_ids(conv, "train", template, tok).text
        assert render_ids(conv, "train", "chat", tok).ids == render_ids(conv, "train", template, tok).ids


def test_an_explicit_other_template_warns(bases, tmp_path, capsys):
    folder = tmp_path / "adapter"
    shutil.copytree(bases["qwen2.5-instruct"], folder)
    record_template(folder, "alpaca", AutoTokenizer.from_pretrained(folder))
    msgs = tmp_path / "m.jsonl"
    msgs.write_text(json.dumps({"id": "a", "messages": CONVS[0]}) + "\n")
    out = tmp_path / "o.jsonl"
    code, cap = run_main(["models", "render", str(folder), "--messages", str(msgs), "--out", str(out)], capsys)
    assert code == 0 and json.loads(out.read_text())["template"] == "alpaca" and "warning" not in cap.err
    code, cap = run_main(["models", "render", str(folder), "--messages", str(msgs), "--out", str(out),
                          "--template", "gemma"], capsys)
    assert code == 0 and json.loads(out.read_text())["template"] == "gemma"
    assert "warning:" in cap.err and TEMPLATE_FILE in cap.err and "field 'template'" in cap.err


def test_a_bad_record_names_file_and_field(bases, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(bases["qwen2.5-instruct"], folder)
    (folder / TEMPLATE_FILE).write_text(json.dumps({"template": "vicuna"}))
    with pytest.raises(CrosstuneError, match=f"{TEMPLATE_FILE} field 'template': 'vicuna'"):
        resolve_template("auto", AutoTokenizer.from_pretrained(folder))
