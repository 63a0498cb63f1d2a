"""The one renderer on tiny models of each family (tests/models/families.py): train prompt ids == score context ids
== generate prompt ids, the BOS count each family expects (never two), the loss mask starting where generation
starts, the end-of-turn token trained and stopping generation, and `crosstune models render` showing the same."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from crosstune.errors import CrosstuneError
from crosstune.models.render import IGNORE, render_ids
from tests.conftest import run_main
from tests.models.families import FAMILIES, GEMMA, LLAMA31, PHI35, build_family

SINGLE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
MULTI = SINGLE + [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
SYSTEM = [{"role": "system", "content": "Be brief."}] + SINGLE


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {f.name: build_family(f, root / f.name) for f in FAMILIES}


@pytest.fixture(scope="module")
def toks(family_dirs):
    return {name: AutoTokenizer.from_pretrained(d) for name, d in family_dirs.items()}


def conversations(family):
    convs = [SINGLE] + ([SYSTEM] if family.system else [])
    return convs + ([MULTI] if family is not PHI35 else [])  # Phi-3.5's template ends a finished one with eos


def n_bos(tok, ids):
    return sum(i == tok.bos_token_id for i in ids) if tok.bos_token_id is not None else 0


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_one_prompt_for_every_purpose(family, template, toks):
    tok = toks[family.name]
    for conv in conversations(family):
        train, score = render_ids(conv, "train", template, tok), render_ids(conv, "score", template, tok)
        gen = render_ids(conv, "generate", template, tok)
        start = len(gen.ids)  # where generation starts: the loss mask of the last answer starts there
        assert train.ids[:start] == gen.ids == score.ids[:score.context_length], (family.name, conv)
        assert train.labels[start] != IGNORE and train.labels[start - 1] == IGNORE
        if conv is not MULTI:
            assert all(lab == IGNORE for lab in train.labels[:start])
        assert score.ids[score.context_length:] == tok(conv[-1]["content"], add_special_tokens=False)["input_ids"]
        # the BOS count: the template's own in chat, the tokenizer's default (0 or 1) for plain text; never two
        if template == "alpaca":
            assert gen.bos_count == int(family.adds_bos)
        elif conv is not MULTI:
            # SmolLM2's BOS token is <|im_start|>, which opens every turn (system, user, assistant)
            assert gen.bos_count == (3 if family.bos == "<|im_start|>" else family.chat_bos)
        if tok.bos_token_id is not None:
            assert gen.ids[:2].count(tok.bos_token_id) <= 1


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_end_of_turn_is_trained_and_stops_generation(family, toks, family_dirs):
    from transformers import AutoModelForCausalLM

    from crosstune.models.backends.hf_generate import HFGenerator

    tok = toks[family.name]
    train = render_ids(SINGLE, "train", "chat", tok)
    stop = tok.convert_tokens_to_ids(family.stops[0])
    trained = [lab for lab in train.labels if lab != IGNORE]
    assert stop in trained  # Llama-3's <|eot_id|>, Gemma's <end_of_turn>, ChatML's <|im_end|>, ...
    gen = HFGenerator(AutoModelForCausalLM.from_pretrained(family_dirs[family.name]), tok)
    assert stop in gen.eos_ids.tolist()


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.chat_bos], ids=lambda f: f.name)
def test_the_double_bos_is_gone(family, toks):
    """Before: the generate path encoded the chat-rendered text with the tokenizer's special tokens (two BOS).
    After: the backend's prompt is the renderer's, one BOS."""
    from crosstune.models.backends.hf_generate import HFGenerator

    tok = toks[family.name]
    msgs = SINGLE[:1]
    before = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))["input_ids"]
    after = HFGenerator.render(type("G", (), {"tok": tok})(), msgs)
    assert n_bos(tok, before) == 2 and n_bos(tok, after) == 1
    assert after == before[1:] == tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                          return_dict=True)["input_ids"]


def test_raw_text_gets_the_tokenizers_bos(toks):
    from crosstune.models.render import score_ids

    for name, tok in toks.items():
        r = score_ids([{"role": "user", "content": "Q: x? A:"}], " B", "raw", tok)
        family = next(f for f in FAMILIES if f.name == name)
        assert r.ids[:1] == ([tok.bos_token_id] if family.adds_bos else r.ids[:1])
        assert r.bos_count == int(family.adds_bos) or family.bos == "<|im_start|>"


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_models_render_cli(family, template, family_dirs, tmp_path, capsys):
    msgs = tmp_path / "m.jsonl"
    msgs.write_text(json.dumps({"id": "a", "messages": SINGLE}) + "\n")
    rows = {}
    for purpose in ("train", "score", "generate"):
        out = tmp_path / f"{purpose}.jsonl"
        code, cap = run_main(["models", "render", str(family_dirs[family.name]), "--messages", str(msgs),
                              "--template", template, "--purpose", purpose, "--out", str(out)], capsys)
        assert code == 0, cap.err
        rows[purpose] = json.loads(out.read_text())
    train, score, gen = rows["train"], rows["score"], rows["generate"]
    first = next(i for i, lab in enumerate(train["labels"]) if lab != -100)
    assert train["ids"][:first] == score["ids"][:score["context_length"]] == gen["ids"]
    assert gen["bos_count"] == (int(family.adds_bos) if template == "alpaca" else
                                3 if family.bos == "<|im_start|>" else family.chat_bos)
    assert gen["template"] == template and gen["text"].endswith("### Response:\n " if template == "alpaca" else "")


def test_bad_input(family_dirs, tmp_path, capsys):
    msgs = tmp_path / "m.jsonl"
    msgs.write_text(json.dumps({"id": "a", "messages": MULTI}) + "\n")
    args = ["models", "render", str(family_dirs[PHI35.name]), "--messages", str(msgs), "--out", str(tmp_path / "o")]
    code, cap = run_main(args + ["--template", "vicuna"], capsys)
    assert code == 2 and "template 'vicuna': expected one of" in cap.err and "Traceback" not in cap.err
    code, cap = run_main(args + ["--purpose", "train", "--template", "chat"], capsys)
    assert code == 2 and "prefix by prefix" in cap.err and "chat_template" in cap.err
    sysmsg = tmp_path / "s.jsonl"
    sysmsg.write_text(json.dumps({"id": "s", "messages": SYSTEM}) + "\n")
    code, cap = run_main(["models", "render", str(family_dirs[GEMMA.name]), "--messages", str(sysmsg), "--out",
                          str(tmp_path / "o"), "--template", "chat"], capsys)
    assert code == 2 and "System role not supported" in cap.err and "chat_template" in cap.err


def test_multi_turn_phi_is_refused_with_the_template_named(toks):
    with pytest.raises(CrosstuneError, match="prefix by prefix"):
        render_ids(MULTI, "train", "chat", toks[PHI35.name])
    assert render_ids(MULTI, "generate", "chat", toks[PHI35.name]).ids  # an open prompt renders


def test_llama3_score_context_is_the_generation_prompt(toks):
    tok = toks[LLAMA31.name]
    r = render_ids(SINGLE, "score", "chat", tok)
    assert tok.decode(r.ids[:r.context_length]).endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_empty_context_rules(toks):
    """Whole-sentence scoring: `start` scores every token after the document start (the default BOS, else lm-eval's
    prefix token); `authors` (RankC's main.py) takes the tokenizer's own encoding and leaves its first token out."""
    from crosstune.models.render import score_ids

    empty, sentence = [{"role": "user", "content": ""}], "Paris is in France."
    plain = lambda tok: tok(sentence, add_special_tokens=False)["input_ids"]  # noqa: E731
    llama, qwen = toks[LLAMA31.name], toks["qwen2.5-instruct"]
    for rule in ("start", "authors"):  # a BOS-adding tokenizer: the two rules agree
        r = score_ids(empty, sentence, "raw", llama, rule)
        assert r.ids[:r.context_length] == [llama.bos_token_id] and r.ids[r.context_length:] == plain(llama)
    r = score_ids(empty, sentence, "raw", qwen, "start")  # no BOS at all: lm-eval's prefix token, the EOS
    assert r.ids[:r.context_length] == [qwen.eos_token_id] and r.ids[r.context_length:] == plain(qwen)
    r = score_ids(empty, sentence, "raw", qwen, "authors")
    assert r.ids[:r.context_length] == plain(qwen)[:1] and r.ids[r.context_length:] == plain(qwen)[1:]
