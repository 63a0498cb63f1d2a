"""The packed log-likelihood path (context + all options in one row, 4D mask) equals the two-pass KV-cache path and a
plain full-sequence forward, on a tiny model, for one-token and longer options and unequal context lengths."""

import pytest
import torch

from crosstune.models.backends.base import LoglikRequest
from crosstune.models.backends.hf import HFBackend


def _reference(be: HFBackend, req: LoglikRequest) -> float:
    ctx, cont = be._encode_pair(req.context, req.continuation)
    ids = torch.tensor([list(ctx) + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(be.model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(ctx) - 1 + k, t] for k, t in enumerate(cont)))


def test_packed_equals_two_pass_and_full_forward(tiny_model_dir):
    be = HFBackend(str(tiny_model_dir), batch_size=3)
    reqs = [LoglikRequest(c, o) for c in ("Question: 2+2?\nAnswer:", "Q: sky\nA: ", "你好")
            for o in (" 4", " four and more", "x", " 世界的中文")]
    packed = be.loglikelihood(reqs)
    assert be._packable() and be.loglik_stats["tokens"] > 0
    be._packed_ok = False
    two_pass = be.loglikelihood(reqs)
    for r, p, t in zip(reqs, packed, two_pass):
        assert p.logprob == pytest.approx(t.logprob, abs=1e-4) and p.is_greedy == t.is_greedy
        assert p.logprob == pytest.approx(_reference(be, r), abs=1e-4)
