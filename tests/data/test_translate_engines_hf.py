"""The HF engine on tiny random models built here: a MarianMT (multi-target and single-pair) and an M2M100 whose
output must start with the forced target-language token; each family's language codes come from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crosstune.data.translate.config import EngineConfig
from crosstune.data.translate.engines.codes import family_tokens, nllb_code
from crosstune.data.translate.engines.hf import HFEngine
from crosstune.errors import CrosstuneError

CHARS = [chr(i) for i in range(32, 127)] + list("áãçéêíóõúâà")


def _tokenizer(out: Path, extra: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for t in extra + CHARS:
        vocab.setdefault(t, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   model_max_length=64)
    fast.save_pretrained(out)
    return len(vocab)


def _marian(out: Path, extra: list[str], eos_bias: bool = False) -> Path:
    import torch
    from transformers import MarianConfig, MarianMTModel

    n = _tokenizer(out, extra)
    torch.manual_seed(0)
    cfg = MarianConfig(vocab_size=n, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
                       pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=None)
    model = MarianMTModel(cfg)
    if eos_bias:  # a real model that always ends at once: the engine returns nothing
        model.final_logits_bias[0, 1] = 1e4
    model.save_pretrained(out)
    return out


def _m2m100(out: Path) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    n = _tokenizer(out, ["__en__", "__pt__", "__es__"])
    torch.manual_seed(0)
    cfg = M2M100Config(vocab_size=n, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
                       pad_token_id=0, eos_token_id=1, bos_token_id=0, decoder_start_token_id=1)
    M2M100ForConditionalGeneration(cfg).save_pretrained(out)
    return out


def _engine(path: Path, **kw) -> HFEngine:
    return HFEngine(EngineConfig(kind="hf", model=str(path), max_new_tokens=8, batch_size=2, **kw))


def test_language_codes_per_family():
    assert nllb_code("zh") == "zho_Hans" and nllb_code("pt-BR") == "por_Latn" and nllb_code("zh-Hant") == "zho_Hant"
    assert family_tokens("m2m100", "Chinese") == ["__zh__"]
    assert family_tokens("madlad", "zh")[0] == "<2zh>"
    assert family_tokens("marian", "pt")[0] == ">>por<<"
    assert family_tokens("nllb", "fil") == ["tgl_Latn"]


def test_multi_target_marian_prefixes_the_target_and_batches(tmp_path):
    eng = _engine(_marian(tmp_path / "m", [">>por<<", ">>spa<<"]))
    assert eng.family == "marian" and eng.supports("en", "pt") and not eng.supports("en", "de")
    ids = eng.encode("Hi", "en", "pt")
    assert ids[0] == eng.tok.convert_tokens_to_ids(">>por<<") and ids[-1] == eng.tok.eos_token_id
    texts = ["Hello there.", "A much longer sentence to translate.", "Three.", "Four, five."]
    out = dict(eng.translate_iter(texts, "en", "pt"))
    assert sorted(out) == [0, 1, 2, 3] and all(isinstance(t, str) for t in out.values())
    again = dict(eng.translate_iter(texts, "en", "pt"))
    assert again == out  # greedy: same input, same output
    with pytest.raises(CrosstuneError, match=r"cannot translate en->de.*>>deu<<"):
        eng.check_pair("en", "de")


def test_single_pair_marian_reads_its_pair_from_the_name(tmp_path):
    eng = _engine(_marian(tmp_path / "opus-mt-en-pt", []))
    assert eng.supports("en", "pt") and not eng.supports("en", "zh")
    eng.check_pair("en", "pt")
    with pytest.raises(CrosstuneError, match="its pair is en->pt"):
        eng.check_pair("en", "zh")
    unnamed = _engine(_marian(tmp_path / "plain", []))
    with pytest.raises(CrosstuneError, match="set engine.pair"):
        unnamed.check_pair("en", "pt")
    assert _engine(tmp_path / "plain", pair=["en", "pt"]).supports("en", "pt")


def test_m2m100_forces_the_target_token_first(tmp_path):
    eng = _engine(_m2m100(tmp_path / "m2m"))
    assert eng.family == "m2m100"
    ids = eng.encode("Hi", "en", "pt")
    assert ids[0] == eng.tok.convert_tokens_to_ids("__en__") and ids[-1] == eng.tok.eos_token_id
    assert eng.forced_bos("pt") == eng.tok.convert_tokens_to_ids("__pt__")
    # The tiny vocabulary's language tokens are ordinary tokens, so the decoded text shows the forced first token.
    out = dict(eng.translate_iter(["Hello.", "Good morning, friend."], "en", "pt"))
    assert all(t.startswith("__pt__") for t in out.values())
    out_es = dict(eng.translate_iter(["Hello."], "en", "es"))
    assert out_es[0].startswith("__es__")
    with pytest.raises(CrosstuneError, match="__zh__"):
        eng.check_pair("en", "zh")


def _alpaca(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_runner_with_an_engine_that_returns_nothing_excludes_rows(tmp_path, monkeypatch):
    from crosstune.data.translate import translate

    model = _marian(tmp_path / "opus-mt-en-pt", [], eos_bias=True)
    src = _alpaca(tmp_path / "a.jsonl", [
        {"instruction": "Say hello to the team.", "input": "", "output": "Hello, team!"},
        {"instruction": "Print it.", "input": "print(1)", "output": "1"},
    ])
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"source: {{path: {src}}}\nlanguages: [pt]\nengine: {{kind: hf, model: {model}}}\n"
                   f"cache: {tmp_path / 'c.sqlite'}\n", encoding="utf-8")
    result = translate(cfg, tmp_path / "out")
    excluded = [json.loads(x) for x in (tmp_path / "out" / "excluded.jsonl").read_text().splitlines()]
    assert {e["id"] for e in excluded} == {"0", "1"}
    assert {e["reason"] for e in excluded} == {"empty_translation"}
    rows = [json.loads(x) for x in (tmp_path / "out" / "parallel.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1"] and all("pt" not in r for r in rows)
    assert result["manifest"]["counts"]["excluded"] == {"pt:empty_translation": 2}


def test_a_device_this_machine_lacks_fails_before_any_work(tmp_path):
    path = _marian(tmp_path / "m", [">>por<<"])
    with pytest.raises(CrosstuneError, match="field 'engine.device': device 'tpu': expected auto, cpu"):
        _engine(path, device="tpu")
    assert str(_engine(path, device="cpu").device) == "cpu"
