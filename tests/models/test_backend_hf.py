"""The HF backend on a tiny random Llama: log-likelihoods equal a plain full-sequence forward, prompt sharing does
not change results, and batched greedy generation equals one-by-one generation."""

import pytest
import torch

from crosstune.models.backends import build_backend
from crosstune.models.backends.base import GenerateRequest, LoglikRequest, truncate_at_stop


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return build_backend(str(tiny_model_dir), batch_size=3)


def naive(backend, context, continuation):
    ctx, cont = backend._encode_pair(context, continuation)
    ids = torch.tensor([list(ctx) + cont])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
    rows = logp[len(ctx) - 1:len(ctx) - 1 + len(cont)]
    tgt = torch.tensor(cont)
    return rows.gather(-1, tgt[:, None]).sum().item(), bool((rows.argmax(-1) == tgt).all())


def test_loglikelihood_matches_full_forward(backend):
    contexts = ["Question: 2+2?\nAnswer:", "The sky is ", "你好世界的", "x"]
    options = [" 4", " four", "(B) blue sky", "中文", "a"]
    reqs = [LoglikRequest(c, o) for c in contexts for o in options]
    got = backend.loglikelihood(reqs)
    for r, g in zip(reqs, got):
        lp, greedy = naive(backend, r.context, r.continuation)
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert g.is_greedy == greedy


def test_order_and_batching_do_not_change_scores(backend, tiny_model_dir):
    reqs = [LoglikRequest("Q: which? A:", o) for o in [" yes", " no", " maybe so", " x"]]
    one = [backend.loglikelihood([r])[0].logprob for r in reqs]
    together = [x.logprob for x in backend.loglikelihood(list(reversed(reqs)))][::-1]
    assert together == pytest.approx(one, abs=1e-4)


def test_trailing_space_moves_into_the_continuation(backend):
    assert backend._encode_pair("Answer: ", "B") == backend._encode_pair("Answer:", " B")


def test_batched_greedy_generation_equals_single(backend):
    prompts = ["Hello", "The capital of France is", [{"role": "user", "content": "hi"}]]
    reqs = [GenerateRequest(p, max_new_tokens=6) for p in prompts]
    batched = backend.generate(reqs)
    single = [backend.generate([r])[0] for r in reqs]
    assert batched == single and all(isinstance(t, str) for t in batched)


def test_stop_strings_cut_the_output(backend):
    full = backend.generate([GenerateRequest("abc", max_new_tokens=8)])[0]
    stop = full[2:3] if len(full) > 2 else None
    if stop:
        cut = backend.generate([GenerateRequest("abc", max_new_tokens=8, stop=(stop,))])[0]
        assert cut == full[:full.index(stop)]
    assert truncate_at_stop("a.b.c", (".",)) == "a"


def test_build_backend_rejects_unknown_kind():
    from crosstune.errors import CrosstuneError

    with pytest.raises(CrosstuneError, match="backend kind"):
        build_backend({"kind": "nope"})


# ---- generation (crosstune.models.backends.hf_generate) ----------------------------------------------------------
PROMPTS = ["Hello", "The capital of France is", [{"role": "user", "content": "hi"}],
           [{"role": "user", "content": "你好世界, a much longer prompt than the others"}], "x"]


def hf_generate_one(backend, prompt, max_new):
    """The peer: transformers' own `generate`, one prompt at a time (no padding)."""
    ids = torch.tensor([backend.render(prompt)])
    with torch.no_grad():
        out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=max_new, pad_token_id=backend.pad_id, temperature=None,
                                     top_p=None, top_k=None)
    return backend.tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_batched_greedy_equals_hf_generate_one_by_one(backend):
    reqs = [GenerateRequest(p, max_new_tokens=12) for p in PROMPTS]
    assert backend.generate(reqs) == [hf_generate_one(backend, p, 12) for p in PROMPTS]


def test_generate_iter_yields_each_request_once(backend):
    reqs = [GenerateRequest(p, max_new_tokens=4) for p in PROMPTS] + [GenerateRequest("abc", 6, temperature=0.8)]
    got = dict(backend.generate_iter(reqs))
    assert sorted(got) == list(range(len(reqs)))
    assert [got[i] for i in range(len(reqs))] == backend.generate(reqs)


def test_sampling_is_seeded_per_request_not_per_batch(backend):
    target = GenerateRequest("The capital of France is", 10, temperature=1.0, top_p=0.95, seed=7)
    alone = backend.generate([target])[0]
    others = [GenerateRequest(p, 10, temperature=1.0, top_p=0.95, seed=s) for s, p in enumerate(["Hello there", "abc"])]
    in_batch = backend.generate(others + [target])[-1]
    assert alone == in_batch  # the same seed gives the same sample whatever shares its batch
    seeds = {backend.generate([GenerateRequest("Hello", 10, temperature=1.0, seed=s)])[0] for s in range(4)}
    assert len(seeds) > 1  # other seeds, other samples
    assert backend.tokens_generated > 0


def test_fingerprint_is_the_weights_hash_plus_dtype(backend, tiny_model_dir):
    from crosstune.models.fingerprint import model_fingerprint

    assert backend.fingerprint == f"{model_fingerprint(tiny_model_dir)}:float32"
    assert build_backend(str(tiny_model_dir), dtype="bfloat16").fingerprint.endswith(":bfloat16")


@pytest.mark.integration
def test_batched_greedy_equals_hf_generate_on_the_default_model(default_model_dir):
    torch.set_num_threads(1)
    real = build_backend(str(default_model_dir), batch_size=4)
    prompts = [[{"role": "user", "content": q}] for q in
               ["What is the capital of France? Answer in Chinese.", "Nenne drei Farben.", "如何学习一门新语言？",
                "Write one sentence about the sea, please, in a calm and friendly tone."]]
    assert real.generate([GenerateRequest(p, max_new_tokens=12) for p in prompts]) == \
        [hf_generate_one(real, p, 12) for p in prompts]


def test_equal_length_prompts_prefill_as_one_batch_with_the_same_result(backend):
    prompts = ["abcd", "wxyz", "1234"]  # equal lengths: the padded-batch prefill path
    reqs = [GenerateRequest(p, max_new_tokens=8) for p in prompts]
    assert backend.generate(reqs) == [hf_generate_one(backend, p, 8) for p in prompts]
