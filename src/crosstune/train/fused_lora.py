"""A PEFT LoRA Linear whose training forward and backward are one autograd node (fewer casts, adds and copies).

PEFT's `lora.Linear` computes `base(x) + lora_B(lora_A(dropout(x))) * scaling` as six autograd nodes: under bf16
autocast every call casts the input for the adapter, casts A and B, writes the dropout output, scales and adds in a
separate pass, and in backward sums three gradient tensors of the input's size. `FusedLoraLinear` is the same
module (a subclass: same parameters, state-dict keys, `save_pretrained`, `merge_and_unload`) whose plain case
(one active vanilla adapter, not merged) runs `_LoraLinear`, which computes the same function with the scaling
folded into one `addmm_` and the adapter's input gradient added in place into the base layer's. Dropout masks are
drawn as in `train/dropout.py` (only the dropped positions, from the same generator; same Bernoulli(p) law).
Everything else (DoRA and other variants, `lora_bias`, several adapters, mixed batches, merged or disabled adapters,
devices other than the CPU) falls through to PEFT's own forward.
"""

from __future__ import annotations

import torch
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

from crosstune.train.dropout import compute_dtype, dropped_positions


class _LoraLinear(torch.autograd.Function):
    """y = x W^T + bias + s * (drop(x) A^T) B^T; only x, A and B get gradients (W and bias are frozen).

    The dropped input (kept values already scaled by 1/(1-p)) is saved, so backward needs no dense elementwise
    pass: the adapter's input gradient is zeroed at the dropped positions (sparse) and added to the base layer's
    inside one `addmm`."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float, p: float):
        dtype = compute_dtype(x)
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, x.shape[-1]).to(dtype)
            w, a, b = weight.to(dtype), lora_a.to(dtype), lora_b.to(dtype)
            y = x2 @ w.t() if bias is None else torch.addmm(bias.to(dtype), x2, w.t())
            pos = dropped_positions(x2.numel(), p, x2.device) if p > 0 else None
            if pos is None:
                xd = x2
            else:
                xd = x2 * (1.0 / (1.0 - p))
                xd.view(-1).index_fill_(0, pos, 0)
            h = xd @ a.t()
            y.addmm_(h, b.t(), alpha=scaling)
        ctx.save_for_backward(xd, w, a, b, h, pos)
        ctx.scaling, ctx.keep, ctx.x_dtype, ctx.x_shape = scaling, 1.0 / (1.0 - p), x.dtype, x.shape
        ctx.param_dtypes = (lora_a.dtype, lora_b.dtype)
        return y.view(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        xd, w, a, b, h, pos = ctx.saved_tensors
        with torch.autocast(xd.device.type, enabled=False):
            g = grad.reshape(-1, grad.shape[-1]).to(xd.dtype)
            gb = torch.mm(g.t(), h).mul_(ctx.scaling)
            gh = torch.mm(g, b).mul_(ctx.scaling)
            ga = torch.mm(gh.t(), xd)
            if pos is None:
                gx = torch.addmm(g @ w, gh, a)
            else:
                gl = gh.mul_(ctx.keep) @ a
                gl.view(-1).index_fill_(0, pos, 0)
                gx = torch.addmm(gl, g, w)
        gx = gx.view(ctx.x_shape).to(ctx.x_dtype)
        return gx, None, None, ga.to(ctx.param_dtypes[0]), gb.to(ctx.param_dtypes[1]), None, None


class FusedLoraLinear(PeftLoraLinear):
    """PEFT's `lora.Linear` with a fused training path for the plain case (see the module docstring)."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        adapters = self.active_adapters
        name = adapters[0] if len(adapters) == 1 else None
        if (args or kwargs or name is None or self.disable_adapters or self.merged or x.device.type != "cpu"
                or name not in self.lora_A or name in self.lora_variant or self.fan_in_fan_out
                or not isinstance(self.get_base_layer(), nn.Linear) or self._base_trains()
                or self.lora_B[name].bias is not None):  # PEFT's lora_bias
            return super().forward(x, *args, **kwargs)
        drop = self.lora_dropout[name]  # nn.Dropout or its subclass LoraDropout: only its p is used here
        p = drop.p if isinstance(drop, nn.Dropout) and drop.training else 0.0
        base = self.get_base_layer()
        return _LoraLinear.apply(x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight,
                                 float(self.scaling[name]), float(p))

    def _base_trains(self) -> bool:
        base = self.get_base_layer()
        return base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad)
