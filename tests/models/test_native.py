"""The native decode kernels: built with the machine's compiler, attention equal to torch's per row, the product equal
to a float64 product to float rounding and the same bytes at any thread count, and the decoder's fallback where they
cannot be built."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from crosstune.models.backends import native
from crosstune.models.backends.hf_decode import LeanDecoder


def _rows(seed: int, lengths: list[int], kv_heads: int = 3, g: int = 3, d: int = 64):
    gen = torch.Generator().manual_seed(seed)
    starts = [sum(lengths[:i]) + 5 * i for i in range(len(lengths))]  # gaps between regions, as in the pool
    cap = starts[-1] + lengths[-1] + 7
    k, v = (torch.randn(kv_heads, cap, d, generator=gen) * 2 for _ in range(2))
    q = torch.randn(len(lengths), kv_heads, g, d, generator=gen)
    return q, k, v, torch.tensor(starts), torch.tensor(lengths)


def test_the_kernel_equals_torch_attention_row_by_row(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path))
    for_rows = native.decode_attention()
    assert (for_rows is not None) == (native.compiler() is not None)  # built wherever a compiler is there
    if for_rows is None:
        return
    assert list((tmp_path / "native").glob("decode-*.so"))
    for seed, lengths, shape in [(0, [1, 7, 300, 1500, 64], (3, 3, 64)), (1, [2, 40], (1, 6, 8)),
                                 (2, [513, 9], (4, 2, 128))]:
        q, k, v, start, length = _rows(seed, lengths, *shape)
        got = for_rows(start, length)(q, k, v, torch.empty_like(q), 0.125)
        for r, (a, n) in enumerate(zip(start.tolist(), length.tolist())):
            want = F.scaled_dot_product_attention(q[r][None], k[None, :, a:a + n], v[None, :, a:a + n], scale=0.125)
            torch.testing.assert_close(got[r], want[0], rtol=1e-5, atol=1e-5)  # float rounding of O(1) outputs
        threads = torch.get_num_threads()
        try:  # rows split over threads: the same bytes
            torch.set_num_threads(3)
            assert torch.equal(for_rows(start, length)(q, k, v, torch.empty_like(q), 0.125), got)
        finally:
            torch.set_num_threads(threads)


def test_the_product_kernel_equals_a_float64_product_at_any_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path))
    linear = native.decode_linear()
    assert (linear is not None) == (native.compiler() is not None)
    if linear is None:
        return
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    # rows: blocks of 6 and leftovers; columns: one 8- or 16-wide tile, several, a partial last one; K off 16
    for o, k, n in [(576, 576, 16), (50, 37, 1), (13, 96, 8), (7, 16, 9), (960, 64, 32), (5, 40, 3), (600, 200, 23)]:
        w, x = torch.randn(o, k, generator=gen), torch.randn(n, k, generator=gen)
        want = (w.double() @ x.double().T).float()
        got = linear(w, x)  # x row-major: its transpose is packed
        assert got.shape == (o, n) and got.is_contiguous()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * k ** 0.5)
        assert torch.equal(linear(w, x.T.contiguous().T), got)  # feature-major x read in place: the same bytes
        try:
            for t in (2, 3):
                torch.set_num_threads(t)
                assert torch.equal(linear(w, x), got)
        finally:
            torch.set_num_threads(threads)


def test_rows_split_into_ranges_of_about_equal_length():
    assert native._split([10, 10, 10, 10], 2) == [(0, 2), (2, 4)]
    assert native._split([100, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    assert native._split([3, 3, 3], 8) == [(0, 1), (1, 2), (2, 3)]
    assert native._split([5], 4) == [(0, 1)]


def test_turned_off_or_without_a_compiler_the_decoder_uses_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.compiler() is None and native.decode_attention() is None and native.decode_linear() is None
    monkeypatch.delenv("CC")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "a-file"))  # a cache that cannot be written
    assert native.decode_attention() is None and native.decode_linear() is None
    monkeypatch.setenv("CROSSTUNE_NATIVE", "0")
    assert native.decode_attention() is None and native.decode_linear() is None
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=80, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                         num_attention_heads=6, num_key_value_heads=2)).eval()
    lean = LeanDecoder(model)
    assert lean.weights.attend is None
    prompts = [[1, 5, 9, 11], [1, 5, 9, 11, 13, 2, 40, 41, 42], [3]]
    got = dict(lean.stream(prompts, 6, lambda lg, rows: lg.argmax(-1), set(), lambda r, t: False, 2, 64))
    for i, ids in enumerate(prompts):
        x = torch.tensor([ids])
        want = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=6,
                              pad_token_id=0, temperature=None, top_p=None, top_k=None)[0, len(ids):].tolist()
        assert got[i] == want
