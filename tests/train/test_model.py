"""build_model: frozen base weights in bfloat16 under bf16 autocast (LoRA), float32 otherwise; merged exports
start from the float32 base."""

from __future__ import annotations

import pytest
import torch

from crosstune.errors import CrosstuneError
from crosstune.train.config import TrainConfig
from crosstune.train.model import build_model, frozen_dtype


def cfg(model_dir, **kw):
    return TrainConfig.model_validate({"data": "x.jsonl", "output_dir": "out", "model": {"name": str(model_dir)}, **kw})


def dtypes(model, trainable: bool) -> set:
    return {p.dtype for p in model.parameters() if p.requires_grad == trainable}


def test_auto_keeps_the_frozen_base_in_bf16_only_under_bf16_autocast_without_sharding(tiny_model_dir):
    c = cfg(tiny_model_dir)
    m = build_model(c, verbose=False, bf16=True)
    assert dtypes(m, False) == {torch.bfloat16} and dtypes(m, True) == {torch.float32}
    for bf16, sharded in ((False, False), (True, True)):
        m = build_model(c, verbose=False, bf16=bf16, sharded=sharded)
        assert dtypes(m, False) == dtypes(m, True) == {torch.float32}
    assert frozen_dtype(cfg(tiny_model_dir, lora={"base_dtype": "float32"}), True, False) is None
    assert frozen_dtype(cfg(tiny_model_dir, method="full"), True, False) is None  # full: everything trains
    with pytest.raises(CrosstuneError, match="lora.base_dtype: bfloat16 needs bf16 autocast"):
        build_model(cfg(tiny_model_dir, lora={"base_dtype": "bfloat16"}), verbose=False, bf16=False)


def test_a_bf16_base_run_merges_onto_the_float32_base(tmp_path, tiny_model_dir, mixture_file):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from crosstune.train.loop import train

    out = tmp_path / "run"
    c = TrainConfig.model_validate({"data": str(mixture_file), "output_dir": str(out), "max_steps": 2, "merge": True,
                                    "model": {"name": str(tiny_model_dir)}, "precision": "bf16_autocast",
                                    "tokenize": {"max_length": 160}, "batch": {"size": 2}})
    train(c)
    merged = load_file(out / "merged" / "model.safetensors")
    assert {t.dtype for t in merged.values()} == {torch.float32}
    expect = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                       out / "adapter").merge_and_unload().state_dict()
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, expect[name], rtol=0, atol=0)
    assert any(not torch.equal(merged[n], v) for n, v in load_file(tiny_model_dir / "model.safetensors").items()
               if n in merged)  # the adapter changed something
