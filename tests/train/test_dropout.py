"""LoRA dropout that draws only the dropped positions: Bernoulli(p) masks, right gradients, wired into PEFT."""

from __future__ import annotations

import torch
from torch import nn

from crosstune.train.config import LoraSection
from crosstune.train.dropout import LoraDropout, dropped_positions
from crosstune.train.lora import attach_lora


def test_positions_are_sorted_unique_in_range_also_across_chunks():
    torch.manual_seed(0)
    for chunk in (0, 3):  # 3: many refills of the gap buffer
        pos = dropped_positions(1000, 0.2, chunk=chunk)
        assert pos.dtype == torch.int64 and pos.numel() > 0
        assert (pos[1:] > pos[:-1]).all() and int(pos[0]) >= 0 and int(pos[-1]) < 1000


def test_masks_are_iid_bernoulli():
    torch.manual_seed(1)
    n, p, draws = 400, 0.3, 3000
    masks = torch.zeros(draws, n)
    for d in range(draws):
        masks[d, dropped_positions(n, p, chunk=d % 2 * 7)] = 1  # both the one-chunk and the refill path
    rate = masks.mean(0)  # per position: p within 5 standard errors
    assert (rate - p).abs().max() < 5 * (p * (1 - p) / draws) ** 0.5
    assert abs(float(masks.mean()) - p) < 0.005
    both = (masks[:, 1:] * masks[:, :-1]).mean()  # neighbours independent: P(both) = p^2
    assert abs(float(both) - p * p) < 0.005
    counts = masks.sum(1)  # the number dropped is Binomial(n, p)
    assert abs(float(counts.var()) - n * p * (1 - p)) < 0.15 * n * p * (1 - p)


def test_forward_and_backward_match_the_mask():
    torch.manual_seed(2)
    x = torch.randn(3, 5, 64, requires_grad=True)
    drop = LoraDropout(0.25).train()
    y = drop(x)
    kept = y != 0
    assert 0 < int((~kept).sum()) < x.numel()
    assert torch.allclose(y[kept], x[kept] / 0.75)
    w = torch.randn_like(x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, w / 0.75 * kept)


def test_bf16_autocast_output_is_the_autocast_rounding():
    torch.manual_seed(3)
    x = torch.randn(4, 32)
    torch.manual_seed(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = LoraDropout(0.1).train()(x)
    assert y.dtype == torch.bfloat16
    kept = y != 0
    assert torch.equal(y[kept], (x / 0.9).to(torch.bfloat16)[kept])


def test_same_seed_same_masks_and_eval_is_identity():
    x = torch.randn(2, 7, 16)
    drop = LoraDropout(0.5).train()
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    assert torch.equal(a, drop(x))
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(LoraDropout(0.0).train()(x), x)


def test_attach_lora_uses_it_unless_torch_is_asked(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    def dropouts(impl):
        model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraSection(dropout=0.1,
                                                                                              dropout_impl=impl))
        return [d for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict)
                for d in m.lora_dropout.values()]

    auto, torch_ = dropouts("auto"), dropouts("torch")
    assert auto and all(type(d) is LoraDropout and d.p == 0.1 for d in auto)
    assert len(torch_) == len(auto) and all(type(d) is nn.Dropout for d in torch_)
