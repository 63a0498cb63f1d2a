"""The fused LoRA Linear computes PEFT's function and gradients, with the same dropout draws, and stays a PEFT layer."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora.layer import Linear as PeftLinear
from torch import nn

from crosstune.train.config import LoraSection
from crosstune.train.dropout import use_lora_dropout
from crosstune.train.fused_lora import FusedLoraLinear
from crosstune.train.lora import attach_lora


class Block(nn.Module):
    def __init__(self, bias: bool):
        super().__init__()
        self.up = nn.Linear(48, 40, bias=bias)
        self.down = nn.Linear(40, 24, bias=False)

    def forward(self, x):
        return self.down(torch.tanh(self.up(x)))  # smooth: no sign flips from rounding


def pair(bias: bool, dropout: float):
    """The same LoRA model twice: PEFT's layers (with our sparse dropout) and the fused ones; B made non-zero."""
    models = []
    for fused in (False, True):
        torch.manual_seed(0)
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["up", "down"])
        if fused:
            cfg._register_custom_module({nn.Linear: FusedLoraLinear})
        model = get_peft_model(Block(bias), cfg)
        use_lora_dropout(model)
        torch.manual_seed(1)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                nn.init.normal_(p, std=0.1)
        models.append(model)
    return models


def run(model, x, seed, autocast):
    torch.manual_seed(seed)
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = model(x)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return y.detach().float(), x.grad, grads


def close(got, want, autocast):
    """float32: equal to 1e-5; bf16 autocast: rounding differs (one fused sum instead of three), so within 2% of
    the tensor's largest magnitude."""
    if autocast:
        assert float((got - want).abs().max()) <= 2e-2 * float(want.abs().max())
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
@pytest.mark.parametrize("autocast", [False, True])
def test_same_outputs_and_gradients_as_peft_with_the_same_dropout_draws(bias, dropout, autocast):
    peft_model, fused_model = pair(bias, dropout)
    assert sum(type(m) is FusedLoraLinear for m in fused_model.modules()) == 2
    assert not any(type(m) is FusedLoraLinear for m in peft_model.modules())
    x = torch.randn(3, 5, 48)
    y0, gx0, g0 = run(peft_model.train(), x, 7, autocast)
    y1, gx1, g1 = run(fused_model.train(), x, 7, autocast)
    close(y1, y0, autocast)
    close(gx1, gx0, autocast)
    assert gx1.dtype == gx0.dtype == torch.float32
    assert set(g1) == set(g0) and len(g0) == 4
    for name in g0:
        assert g1[name].dtype == torch.float32
        close(g1[name], g0[name], autocast)
    if dropout:  # the masks really differ between seeds (dropout is applied), and equal within one
        y2, _, _ = run(fused_model.train(), x, 8, autocast)
        assert not torch.allclose(y2, y1)


def test_eval_merge_disable_and_save_behave_like_peft(tmp_path):
    peft_model, fused_model = pair(False, 0.2)
    x = torch.randn(2, 48)
    with torch.no_grad():
        torch.testing.assert_close(fused_model.eval()(x), peft_model.eval()(x))  # eval: no dropout
        inner = fused_model.get_base_model()
        with fused_model.disable_adapter():
            torch.testing.assert_close(fused_model(x), inner.down.base_layer(torch.tanh(inner.up.base_layer(x))))
    fused_model.save_pretrained(tmp_path / "a")
    peft_model.save_pretrained(tmp_path / "b")
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)
    reloaded = PeftModel.from_pretrained(Block(False), tmp_path / "a").eval()  # plain PEFT reads it
    with torch.no_grad():
        expect = fused_model(x)
        torch.testing.assert_close(reloaded(x), expect)
        merged = fused_model.merge_and_unload()
        torch.testing.assert_close(merged(x), expect, rtol=1e-5, atol=1e-5)


def test_attach_lora_fuses_on_cpu_unless_turned_off(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    def layers(**kw):
        model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraSection(**kw))
        return [type(m) for m in model.modules() if isinstance(m, PeftLinear)]

    fused, off, torch_dropout = layers(), layers(fused=False), layers(dropout_impl="torch")
    assert len(fused) == 14 and set(fused) == {FusedLoraLinear}  # 7 targets x 2 layers
    assert set(off) == set(torch_dropout) == {PeftLinear}


def test_lora_bias_and_dora_fall_back_to_peft():
    x = torch.randn(4, 48)
    for extra in ({"lora_bias": True}, {"use_dora": True}):
        outs = []
        for fused in (False, True):
            torch.manual_seed(0)
            cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["up", "down"], **extra)
            if fused:
                cfg._register_custom_module({nn.Linear: FusedLoraLinear})
            model = get_peft_model(Block(False), cfg)
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    torch.manual_seed(1)
                    nn.init.normal_(p, std=0.1)
            outs.append(model.train()(x))
        torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
