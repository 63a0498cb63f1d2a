"""Cross-entropy through a frozen LM head, vocabulary slice by slice, with the hidden states' gradient made in forward.

`head(hidden).float()` then `cross_entropy` writes every target position's logits over the whole vocabulary in
float32 (532 x 49,152 floats = 100 MB for one SmolLM2 batch), reads them again for the log-softmax, and backward
writes and reads tensors of that size twice more: 340 ms of a 2.1 s LoRA step on one core. With the head frozen
(LoRA) the only gradient needed is the hidden states', `(softmax - onehot) @ W`. `_HeadCrossEntropy` makes the
logits one vocabulary slice at a time (the slice's float32 copy stays in cache), keeps a running max and sum for the
log-sum-exp, stores the logits in the autocast dtype only, and in a second pass over the slices multiplies their
softmax by the slice of W; the onehot's part is the target rows of W. Backward only scales that gradient by the
incoming per-token gradient. Measured on that batch: 166 ms instead of 340 ms, same losses (bf16 logits, float32 softmax, as before).
"""

from __future__ import annotations

import torch

from crosstune.train.dropout import compute_dtype

SLICE = 1024  # vocabulary entries per slice: [rows, 1024] float32 stays in a core's cache for typical batches


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, width: int):
        dtype = compute_dtype(hidden)
        rows, vocab = hidden.shape[0], weight.shape[0]
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dtype), weight.to(dtype)
            logits = torch.empty(rows, vocab, dtype=dtype, device=h.device)
            top = torch.full((rows, 1), -float("inf"), device=h.device)
            total = torch.zeros(rows, 1, device=h.device)
            for a in range(0, vocab, width):
                z = torch.mm(h, w[a:a + width].t(), out=logits[:, a:a + width]).to(torch.float32, copy=True)
                new = torch.maximum(top, z.amax(-1, keepdim=True))
                total = total * (top - new).exp_() + z.sub_(new).exp_().sum(-1, keepdim=True)
                top = new
            lse = top + total.log_()
            losses = lse.squeeze(1) - logits.gather(1, targets[:, None]).float().squeeze(1)
            grad = -w[targets].float()  # the onehot's part of (softmax - onehot) @ W
            for a in range(0, vocab, width):
                p = logits[:, a:a + width].to(torch.float32, copy=True).sub_(lse).exp_()
                grad += p.to(dtype) @ w[a:a + width]
        ctx.save_for_backward(grad)
        ctx.hidden_dtype = hidden.dtype
        return losses

    @staticmethod
    def backward(ctx, grad_losses):
        grad, = ctx.saved_tensors
        return (grad * grad_losses[:, None]).to(ctx.hidden_dtype), None, None, None


def head_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                       width: int = SLICE) -> torch.Tensor:
    """Per-row cross-entropy of `hidden @ weight.T` against `targets` (rows of `hidden`); `weight` must be frozen."""
    return _HeadCrossEntropy.apply(hidden, weight, targets, width)
