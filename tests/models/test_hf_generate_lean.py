"""The continuous-batching decoder (crosstune.models.backends.hf_decode) on tiny random Llama and Qwen2 models built
here: greedy tokens equal transformers' `generate` one prompt at a time while slots refill and the KV pool is
smaller than the whole queue, the generic path gives the same, and the pool hands out and merges regions."""

import pytest
import torch

from crosstune.models.backends.base import GenerateRequest
from crosstune.models.backends.hf_decode import KVPool, unsupported
from crosstune.models.backends.hf_generate import HFGenerator

PROMPTS = [[5, 9, 14, 3, 7], [8], [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42], [12, 12, 12], [50, 4, 9],
           [17, 18, 19, 20, 21, 22, 23], [2, 44], [60, 61, 62, 63, 64, 65, 66, 67, 68]]


class _Tok:
    """Just what HFGenerator needs from a tokenizer for id prompts: ids as text, eos/pad ids."""
    eos_token_id, pad_token_id = 1, 1

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(int(i)) for i in ids if not (skip_special_tokens and int(i) == 1))

    def batch_decode(self, rows, skip_special_tokens=True):
        return [self.decode(r, skip_special_tokens) for r in rows]


def _model(kind: str):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(3)
    common = dict(vocab_size=80, hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
                  num_key_value_heads=2, max_position_embeddings=256, eos_token_id=1, pad_token_id=1,
                  initializer_range=0.3)  # peaked logits: greedy choices are not near-ties
    if kind == "qwen2":  # q/k/v biases, untied head
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False, use_sliding_window=False))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=True))
    return model.eval()


def _hf_one(model, ids, max_new):
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=max_new,
                             pad_token_id=1, eos_token_id=1, temperature=None, top_p=None, top_k=None)
    return _Tok().decode(out[0, x.shape[1]:])


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_greedy_equals_hf_generate_while_slots_refill(kind):
    model = _model(kind)
    assert unsupported(model) is None
    # 3 slots for 8 prompts, and a pool that holds only some of them: rows end and new ones join mid-decode
    gen = HFGenerator(model, _Tok(), batch_size=3, max_batch_tokens=40)
    reqs = [GenerateRequest(p, max_new_tokens=10) for p in PROMPTS]
    got = gen.generate(reqs)
    assert gen.lean_decoder() is not None and gen.lean_decoder().pool.capacity == 40
    assert got == [_hf_one(model, p, 10) for p in PROMPTS]
    assert gen.tokens_generated == sum(len(t.split()) for t in got)
    assert HFGenerator(model, _Tok(), batch_size=3, lean=False).generate(reqs) == got  # the generic path agrees
    assert sorted(gen.lean_decoder().pool.free) == [(0, 40)]  # every region returned


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_the_gpu_form_of_the_decode_step_gives_the_same_tokens(kind):
    """GPUs decode with the model's own (unfused) tensors and torch.mm for `weight @ x.T`: run that form here."""
    from crosstune.models.backends.hf_forward import DecodeWeights

    model = _model(kind)
    gen = HFGenerator(model, _Tok(), batch_size=3)
    lean = gen.lean_decoder()
    lean.weights = DecodeWeights(model, torch.float32, fuse=False)
    lean.weights.linear = lambda weight, x: torch.mm(weight, x.t())
    q_weight = lean.weights.layers[0][2][0][0]
    assert len(lean.weights.layers[0][2]) == 3  # no copies: the model's own q_proj storage
    assert q_weight.data_ptr() == model.model.layers[0].self_attn.q_proj.weight.data_ptr()
    got = gen.generate([GenerateRequest(p, max_new_tokens=8) for p in PROMPTS])
    assert got == [_hf_one(model, p, 8) for p in PROMPTS]


def test_region_split_gives_every_row_its_region():
    from crosstune.models.backends.hf_forward import _region_split

    regions = [(10, 14), (0, 3), (20, 21)]  # rows in any order, gaps between regions
    sizes, piece = _region_split(regions, 30)
    pieces = torch.arange(30).split(sizes)
    assert sum(sizes) == 30 and [pieces[i].tolist() for i in piece] == [list(range(a, e)) for a, e in regions]


def test_stop_strings_end_a_row_and_free_its_slot():
    model = _model("llama")
    gen = HFGenerator(model, _Tok(), batch_size=2)
    full = gen.generate([GenerateRequest(p, max_new_tokens=8) for p in PROMPTS])
    stop = full[2].split()[3]
    cut = gen.generate([GenerateRequest(p, max_new_tokens=8, stop=(stop,)) for p in PROMPTS])
    for f, c in zip(full, cut):
        assert c == (f[:f.index(stop)] if stop in f else f)


def test_bfloat16_decode_runs_and_mostly_agrees():
    model = _model("llama")
    fp32 = HFGenerator(model, _Tok(), batch_size=4).generate([GenerateRequest(p, 6) for p in PROMPTS])
    gen = HFGenerator(model, _Tok(), batch_size=4, decode_dtype="bfloat16")
    bf16 = gen.generate([GenerateRequest(p, 6) for p in PROMPTS])
    assert gen.lean_decoder().pool.k[0].dtype == torch.bfloat16
    # the first token comes from the float32 prefill; later ones may drift in bf16
    assert [b.split()[:1] for b in bf16] == [f.split()[:1] for f in fp32]


def test_decoder_rebuilds_after_the_weights_change():
    model = _model("llama")
    gen = HFGenerator(model, _Tok(), batch_size=4)
    before = gen.generate([GenerateRequest(PROMPTS[0], 6)])
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.mul_(-3.0)
    after = gen.generate([GenerateRequest(PROMPTS[0], 6)])
    assert after == [_hf_one(model, PROMPTS[0], 6)] and after != before


def test_pool_regions_first_fit_and_merge():
    pool = KVPool(layers=1, kv_heads=1, head_dim=2, capacity=10, dtype=torch.float32, device=torch.device("cpu"))
    a, b, c = pool.take(4), pool.take(3), pool.take(3)
    assert (a, b, c) == (0, 4, 7) and pool.take(1) is None
    pool.give(b, 3)
    assert pool.take(4) is None and pool.take(2) == 4
    pool.give(a, 4)
    pool.give(4, 2)
    pool.give(c, 3)
    assert pool.free == [(0, 10)]


def test_other_architectures_use_the_generic_path():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    assert "gpt2" in unsupported(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=80)))
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=80, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, hidden_act="gelu"))
    assert unsupported(llama) and HFGenerator(llama, _Tok()).lean_decoder() is None


def test_a_model_with_unmerged_adapters_uses_the_generic_path():
    from peft import LoraConfig, get_peft_model

    model = _model("llama")
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    assert "adapter" in unsupported(peft.base_model.model)  # its projections carry the adapter's terms
    gen = HFGenerator(peft.base_model.model, _Tok(), batch_size=3)
    assert gen.lean_decoder() is None
    assert gen.generate([GenerateRequest(p, 6) for p in PROMPTS[:3]]) == [_hf_one(peft, p, 6) for p in PROMPTS[:3]]


def test_backend_setting_reaches_the_decoder_and_the_fingerprint(tiny_model_dir):
    from crosstune.errors import CrosstuneError
    from crosstune.models.backends import build_backend

    be = build_backend({"kind": "hf", "model": str(tiny_model_dir), "decode_dtype": "bfloat16"})
    assert be.generator.decode_dtype == "bfloat16" and be.fingerprint.endswith(":float32:decode-bfloat16")
    with pytest.raises(CrosstuneError, match="decode_dtype 'int8'"):
        build_backend({"kind": "hf", "model": str(tiny_model_dir), "decode_dtype": "int8"})


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_prompts_sharing_a_prefix_prefill_it_once_with_the_same_tokens(kind):
    """A chat template's system turn in front of every prompt: later prompts (in the same packed forward, in later
    forwards, and when they refill a slot) skip the shared tokens and copy their keys, with greedy tokens equal to
    transformers' `generate` one prompt at a time."""
    model = _model(kind)
    system = [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]
    prompts = [system + p for p in PROMPTS]
    gen = HFGenerator(model, _Tok(), batch_size=5)
    lean = gen.lean_decoder()
    lean.prefill_tokens = 40  # several packed forwards per admission
    fed = []  # tokens fed by each prefill forward
    forward = lean._prefill_forward
    lean._prefill_forward = lambda tokens, pos, at, plan: fed.append(len(tokens)) or forward(tokens, pos, at, plan)
    got = gen.generate([GenerateRequest(p, max_new_tokens=8) for p in prompts])
    assert got == [_hf_one(model, p, 8) for p in prompts]
    assert len(fed) >= 4  # several forwards: within one, across forwards of an admission, and on refills
    assert sum(fed) == sum(len(p) for p in prompts) - len(system) * (len(prompts) - 1)  # the prefix fed once
