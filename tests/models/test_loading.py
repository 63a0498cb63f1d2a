import pytest

from crosstune.errors import CrosstuneError
from crosstune.models.loading import cache_dir, load_tokenizer, resolve_model


def test_cache_dir_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CROSSTUNE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "crosstune"


def test_not_a_gguf(tmp_path):
    p = tmp_path / "model.gguf"
    p.write_bytes(b"not a model")
    with pytest.raises(CrosstuneError, match="not a GGUF model file"):
        resolve_model(p)


def test_folder_without_config_and_missing_path(tmp_path):
    with pytest.raises(CrosstuneError, match="not a model"):
        resolve_model(tmp_path)
    with pytest.raises(CrosstuneError, match="no such folder or file"):
        resolve_model(tmp_path / "nope")


def test_hf_folder_and_missing_tokenizer(tiny_model_dir, tmp_path):
    assert resolve_model(tiny_model_dir) == str(tiny_model_dir)
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_model_dir / "config.json", bare / "config.json")
    with pytest.raises(CrosstuneError, match="cannot load a tokenizer"):
        load_tokenizer(bare)


@pytest.mark.integration
def test_default_model_converts_and_answers(default_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir)
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
