"""The sliced head cross-entropy equals `cross_entropy(head(h).float())` in loss and gradient; TargetLoss uses it
only where it applies (a frozen, bias-free, uncapped head)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crosstune.train.fused_ce import head_cross_entropy


def reference(h, w, t, autocast):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        return F.cross_entropy(F.linear(h, w).float(), t, reduction="none")


@pytest.mark.parametrize("autocast,dtype", [(False, torch.float32), (True, torch.float32), (True, torch.bfloat16)])
def test_losses_and_hidden_gradients_match_cross_entropy(autocast, dtype):
    torch.manual_seed(0)
    rows, hidden, vocab = 29, 40, 1000
    w = (torch.randn(vocab, hidden) * 0.2).to(dtype)
    t = torch.randint(0, vocab, (rows,))
    t[:4] = torch.tensor([0, 95, 96, vocab - 1])  # slice edges (width 96 below) and both vocabulary ends
    h0 = torch.randn(rows, hidden).to(dtype)
    weights = torch.rand(rows)
    out = {}
    for name, fn in (("sliced", lambda h: head_cross_entropy(h, w, t, width=96)),
                     ("reference", lambda h: reference(h, w, t, autocast))):
        h = h0.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            losses = fn(h)
        (losses * weights).sum().backward()
        out[name] = (losses.detach(), h.grad)
    (l1, g1), (l0, g0) = out["sliced"], out["reference"]
    assert l1.dtype == torch.float32 and g1.dtype == dtype
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)  # same (bf16 or fp32) logits, float32 softmax
    scale = float(g0.abs().max())
    assert float((g1.float() - g0.float()).abs().max()) <= (1e-5 if not autocast else 1e-2) * scale


def test_target_loss_fused_equals_unfused_on_a_lora_model_and_a_trained_head_falls_back(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from crosstune.train.config import LoraSection
    from crosstune.train.lora import attach_lora
    from crosstune.train.model import TargetLoss

    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 1, 1]])
    pos = torch.arange(6).expand(2, 6)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    targets = torch.tensor([[-100, -100, 7, 8, 9, 10], [-100, 12, 13, 14, -100, -100]])
    for modules_to_save in ([], ["lm_head"]):
        results = []
        for fused in (True, False):
            torch.manual_seed(0)
            model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                LoraSection(r=4, dropout=0.0, modules_to_save=modules_to_save))
            losses = TargetLoss(model, fused).train()(ids, pos, mask, targets)
            losses.sum().backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
            results.append((losses.detach(), grads))
        (l1, g1), (l0, g0) = results
        torch.testing.assert_close(l1, l0)
        assert set(g1) == set(g0)
        for name in g0:
            torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6)
        if modules_to_save:  # the trained (tied) head got its gradient: the unfused path was taken
            assert "base_model.model.model.embed_tokens.modules_to_save.default.weight" in g1
