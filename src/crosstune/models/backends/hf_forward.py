"""The lean forward passes behind `hf_decode`: a packed prefill (row-major) and a decode step (feature-major) through
Llama-architecture layers (RMSNorm, rotary q/k, grouped-query attention, SwiGLU), keys and values in a `KVPool`.

- Prefill (`prefill_forward`): prompts packed into one forward on the model's own weights (large row-major matrix
  products), attention causal within each prompt, each prompt's keys and values written into its pool region; a
  shared prefix's keys copied instead of computed (`Prefill.share`); the last layer on each prompt's last token only.
- Decode (`decode_forward`): one token per row with activations kept feature-major, (features, rows): every
  projection is `weight @ x.T`, the weight streamed as the product's large operand: on CPUs in float32 the native
  kernel (`native.decode_linear`, up to 32 rows; 0.55-0.75x oneDNN's time), else oneDNN's product (~1.2-1.6x
  faster than `x @ weight.T` for 16 rows), with no packed copy of the weights (on CPUs q/k/v and gate/up are fused
  into one copied matrix each; GPUs keep the model's own tensors, unfused).
  Attention runs per row over its own region (grouped-query heads without repeating keys): on CPUs in float32 one
  call of the native kernel (`native.decode_attention`) per layer for all rows, else one torch fused call per row
  and layer; rotary tables once per step for all layers.

Both follow transformers' Llama modules op for op in their dtypes (float32 statistics in RMSNorm, rotary tables in
float32 then cast); only the order of sums inside matrix products differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from crosstune.models.backends import native


@dataclass(frozen=True)
class Geometry:
    """Attention shape and rotary constants of one model."""
    heads: int
    kv_heads: int
    head_dim: int
    scale: float
    inv_freq: torch.Tensor  # (head_dim / 2,) float32
    rope_scale: float

    @classmethod
    def of(cls, model) -> Geometry:
        cfg, inner = model.config, model.model
        attn = inner.layers[0].self_attn
        head_dim = getattr(attn, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(cfg.num_attention_heads, cfg.num_key_value_heads, head_dim, getattr(attn, "scaling", head_dim ** -0.5),
                   inner.rotary_emb.inv_freq.float(), float(getattr(inner.rotary_emb, "attention_scaling", 1.0)))

    def rotary(self, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin), each (len(pos), head_dim) in `dtype`, as transformers' rotary embedding computes them."""
        freqs = pos[:, None].float() * self.inv_freq[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.rope_scale).to(dtype), (emb.sin() * self.rope_scale).to(dtype)


class PrefillWeights:
    """The model's own decoder tensors as tuples per layer (no module dispatch, no copies)."""

    def __init__(self, model):
        inner = model.model
        self.dtype = next(model.parameters()).dtype
        lin = lambda m: (m.weight, m.bias)  # noqa: E731
        self.layers = [(layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon,
                        [lin(layer.self_attn.q_proj), lin(layer.self_attn.k_proj), lin(layer.self_attn.v_proj)],
                        lin(layer.self_attn.o_proj), layer.post_attention_layernorm.weight,
                        layer.post_attention_layernorm.variance_epsilon,
                        [lin(layer.mlp.gate_proj), lin(layer.mlp.up_proj)], lin(layer.mlp.down_proj))
                       for layer in inner.layers]
        self.norm = (inner.norm.weight, inner.norm.variance_epsilon)
        self.embed = inner.embed_tokens.weight
        self.head = lin(model.get_output_embeddings())


class DecodeWeights:
    """Decoder weights in `dtype` for the feature-major step, with its product `linear(weight, x) = weight @ x.T`.
    Biases are (out, 1) columns. q/k/v and gate/up are one fused matrix each where the weights are copied anyway
    (on CPUs, or when casting; `fuse` overrides); otherwise one matrix per projection, the model's own tensors."""

    def __init__(self, model, dtype: torch.dtype, fuse: bool | None = None):
        inner = model.model
        own = next(model.parameters()).dtype
        device = inner.embed_tokens.weight.device
        self.dtype = dtype
        cast = (lambda t: t.detach()) if dtype == own else (lambda t: t.detach().to(dtype))
        col = lambda b: None if b is None else cast(b)[:, None]  # noqa: E731
        fuse = device.type == "cpu" or dtype != own if fuse is None else fuse

        def group(*mods):  # [(weight, bias column)]: one fused entry, or one per module
            if not fuse:
                return [(cast(m.weight), col(m.bias)) for m in mods]
            bias = None if mods[0].bias is None else torch.cat([cast(m.bias) for m in mods])[:, None]
            return [(torch.cat([cast(m.weight) for m in mods]).contiguous(), bias)]

        self.linear = _transposed_linear(device, dtype)
        # all rows' attention in one native call (CPU float32, where a C compiler built it), else a torch call per row
        self.attend = native.decode_attention() if device.type == "cpu" and dtype == torch.float32 else None
        self.layers = []
        for layer in inner.layers:
            a, p = layer.self_attn, layer.mlp
            self.layers.append((cast(layer.input_layernorm.weight)[:, None], layer.input_layernorm.variance_epsilon,
                                group(a.q_proj, a.k_proj, a.v_proj), (cast(a.o_proj.weight), col(a.o_proj.bias)),
                                cast(layer.post_attention_layernorm.weight)[:, None],
                                layer.post_attention_layernorm.variance_epsilon, group(p.gate_proj, p.up_proj),
                                (cast(p.down_proj.weight), col(p.down_proj.bias))))
        self.norm = (cast(inner.norm.weight)[:, None], inner.norm.variance_epsilon)
        self.embed = cast(inner.embed_tokens.weight)
        head = model.get_output_embeddings()
        self.head = (cast(head.weight), col(head.bias))


@dataclass
class Prefill:
    """How a packed prefill forward runs: per prompt (first token in the batch, end, pool start, shared tokens
    skipped), each prompt's whole region, whether the pool holds the forward's own numbers (not when decoding in
    another dtype), each prompt's last token in the batch, and the shared tokens: their source region's start, how
    many, and the regions that get a copy."""
    spans: list[tuple[int, int, int, int]]
    regions: list[tuple[int, int]]
    exact: bool
    last: torch.Tensor
    source: int
    shared: int
    copies: list[int]

    def share(self, kc: torch.Tensor, vc: torch.Tensor) -> None:
        """Copy the source's shared keys and values (this layer's) into the regions that skipped them."""
        src, n = self.source, self.shared
        for start in self.copies:
            kc[:, start:start + n] = kc[:, src:src + n]
            vc[:, start:start + n] = vc[:, src:src + n]


def prefill_forward(g: Geometry, pool, tokens: torch.Tensor, pos: torch.Tensor, at: torch.Tensor,
                    w: PrefillWeights, plan: Prefill) -> torch.Tensor:
    """The layers on `tokens` (at positions `pos`), keys and values stored at pool rows `at`; each prompt's new
    tokens attend causally within its region, and in the last layer (when the pool holds these numbers) only each
    prompt's last token goes on: the other tokens' keys and values are all later steps need. Returns each prompt's
    last-position logits (B, V) in float32."""
    dt, n = w.dtype, len(tokens)
    cos, sin = g.rotary(pos, dt)
    hd, kvh, heads = g.head_dim, g.kv_heads, g.heads
    final = len(w.layers) - 1
    x = F.embedding(tokens, w.embed)
    for layer, (w1, e1, attn_in, o_, w2, e2, mlp_in, d_) in enumerate(w.layers):
        h = _rms(x, w1, e1)
        q, k, v = (F.linear(h, *p) for p in attn_in)
        k = _rope(k.view(n, kvh, hd), cos, sin)
        v = v.view(n, kvh, hd)
        kc, vc = pool.k[layer], pool.v[layer]
        kc[:, at] = k.transpose(0, 1).to(kc.dtype)
        vc[:, at] = v.transpose(0, 1).to(vc.dtype)
        plan.share(kc, vc)
        if plan.exact and layer == final:  # on with each prompt's last token only, over its whole region
            x, q, cos, sin, n = x[plan.last], q[plan.last], cos[plan.last], sin[plan.last], len(plan.last)
            q = _rope(q.view(n, 1, kvh, heads // kvh, hd), cos, sin)
            kc, vc = kc[None], vc[None]
            out = torch.cat([F.scaled_dot_product_attention(q[b], kc[:, :, a:e], vc[:, :, a:e], scale=g.scale)
                             .view(1, heads * hd) for b, (a, e) in enumerate(plan.regions)])
        else:  # each prompt's new tokens causally (grouped-query heads)
            out = torch.empty(n, heads, hd, dtype=dt, device=x.device)
            q = _rope(q.view(n, heads, hd), cos, sin).transpose(0, 1)[None]
            k, v = k.transpose(0, 1)[None], v.transpose(0, 1)[None]
            for a, e, start, skip in plan.spans:
                if skip:  # after the shared tokens: over the whole region, causal with placeholder queries
                    # for the shared positions (their outputs unused; a causal kernel, no mask: ~1.7x faster)
                    keys, vals = kc[None, :, start:start + skip + e - a], vc[None, :, start:start + skip + e - a]
                    qs = torch.cat([q.new_zeros(1, heads, skip, hd), q[..., a:e, :]], dim=2)
                    o = F.scaled_dot_product_attention(qs, keys, vals, is_causal=True, scale=g.scale,
                                                       enable_gqa=True)[..., skip:, :]
                else:
                    o = F.scaled_dot_product_attention(q[..., a:e, :], k[..., a:e, :], v[..., a:e, :],
                                                       is_causal=True, scale=g.scale, enable_gqa=True)
                out[a:e] = o[0].transpose(0, 1)
            out = out.view(n, -1)
        x = x + F.linear(out, *o_)
        gate, up = (F.linear(_rms(x, w2, e2), *p) for p in mlp_in)
        x = x + F.linear(F.silu(gate) * up, *d_)
    if not plan.exact:
        x = x[plan.last]
    return F.linear(_rms(x, *w.norm), *w.head).float()


def decode_forward(g: Geometry, pool, tokens: torch.Tensor, pos: torch.Tensor, at: torch.Tensor, w: DecodeWeights,
                   regions: list[tuple[int, int]]) -> torch.Tensor:
    """One token per row at positions `pos`, its keys and values stored at pool rows `at`, attending its row's
    whole region; activations feature-major. Returns next-token logits (rows, V) in float32 (a transposed view)."""
    n, hd, kvh, heads = len(tokens), g.head_dim, g.kv_heads, g.heads
    cos, sin = (t.t() for t in g.rotary(pos, w.dtype))  # (head_dim, rows)
    half = hd // 2
    sin = torch.cat((-sin[:half], sin[half:]))  # rotate_half(x) * sin == x.roll(half) * this, bit for bit
    attend = None
    if w.attend and hd % 8 == 0:  # the rows' regions and their split over threads, once per step
        attend = w.attend(torch.tensor([a for a, _ in regions]), torch.tensor([e - a for a, e in regions]))
        out = torch.empty(n, kvh, heads // kvh, hd)
    else:
        sizes, piece = _region_split(regions, pool.capacity)
    lin = w.linear
    x = F.embedding(tokens, w.embed).t().contiguous()  # (hidden, rows)
    for layer, (w1, e1, attn_in, o_, w2, e2, mlp_in, d_) in enumerate(w.layers):
        h = _rms(x, w1, e1, 0).t()
        if len(attn_in) == 1:  # fused q/k/v: the q and k rows are adjacent, one rotary pass
            qkv = _linear(lin, h, *attn_in[0])
            qk = _rope_t(qkv[:(heads + kvh) * hd].view(heads + kvh, hd, n), cos, sin, half)
            q, k, v = qk[:heads], qk[heads:], qkv[(heads + kvh) * hd:].view(kvh, hd, n)
        else:
            q, k, v = (_linear(lin, h, *p) for p in attn_in)
            q, k = _rope_t(q.view(heads, hd, n), cos, sin, half), _rope_t(k.view(kvh, hd, n), cos, sin, half)
            v = v.view(kvh, hd, n)
        kc, vc = pool.k[layer], pool.v[layer]
        kc.index_copy_(1, at, k.permute(0, 2, 1).to(kc.dtype))
        vc.index_copy_(1, at, v.permute(0, 2, 1).to(vc.dtype))
        # each row's query heads contiguous (a strided query takes torch's ~2x slower attention path)
        q = q.permute(2, 0, 1).contiguous().view(n, kvh, -1, hd)
        if attend:  # (the buffer is reused: the o product below reads it before the next layer writes it)
            att = attend(q, kc, vc, out, g.scale)
        else:
            q, keys, vals = q[:, None].unbind(0), kc[None].split(sizes, dim=2), vc[None].split(sizes, dim=2)
            att = torch.cat([F.scaled_dot_product_attention(q[b], keys[i], vals[i], scale=g.scale)
                             for b, i in enumerate(piece)])  # every row's region: one split op each above
        x = x + _linear(lin, att.view(n, heads * hd), *o_)
        h = _rms(x, w2, e2, 0).t()
        if len(mlp_in) == 1:
            gate, up = _linear(lin, h, *mlp_in[0]).chunk(2)
        else:
            gate, up = (_linear(lin, h, *p) for p in mlp_in)
        x = x + _linear(lin, (F.silu(gate) * up).t(), *d_)
    return _linear(lin, _rms(x, *w.norm, 0).t(), *w.head).t().float()


def _region_split(regions: list[tuple[int, int]], capacity: int) -> tuple[list[int], list[int]]:
    """Sizes that split the pool's capacity axis into pieces, every region one of them, and each region's piece."""
    sizes, piece, at = [], [0] * len(regions), 0
    for b in sorted(range(len(regions)), key=lambda b: regions[b][0]):
        a, e = regions[b]
        sizes += [a - at, e - a]
        piece[b], at = len(sizes) - 1, e
    return sizes + [capacity - at], piece


def _linear(lin: Callable, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """weight @ x.T (+ bias column): (out, rows) from row-major-indexed x (rows, in), any strides."""
    out = lin(weight, x)
    return out if bias is None else out + bias


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float, dim: int = -1) -> torch.Tensor:
    """transformers' LlamaRMSNorm, op for op (float32 statistics), over `dim`: -1 for row-major x; 0 for
    feature-major x (features, rows), with weight a (features, 1) column."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(dim, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' apply_rotary_pos_emb on (rows, ..., head_dim) with per-row (rows, head_dim) tables."""
    cos, sin = cos.view(cos.shape[0], *[1] * (x.dim() - 2), -1), sin.view(sin.shape[0], *[1] * (x.dim() - 2), -1)
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _rope_t(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor, half: int) -> torch.Tensor:
    """`_rope` on feature-major x (heads, head_dim, rows), tables (head_dim, rows), the sine's first half negated."""
    return x * cos + x.roll(half, 1) * sin_signed


def _transposed_linear(device: torch.device, dtype: torch.dtype) -> Callable:
    """weight @ x.T: for float32 on CPUs the native kernel (`native.decode_linear`, up to its column limit), else
    oneDNN's product with the weight as the streamed operand when this torch build has it (checked on a small
    product), else torch.mm."""
    mm = lambda weight, x: torch.mm(weight, x.t())  # noqa: E731
    if device.type != "cpu" or dtype != torch.float32:
        return mm
    wide = mm
    if torch.backends.mkldnn.is_available():
        try:
            w, x = torch.randn(8, 4), torch.randn(3, 4)
            onednn = lambda weight, x: torch.ops.mkldnn._linear_pointwise(weight, x, None, "none", [], "")  # noqa: E731
            if torch.allclose(onednn(w, x), w @ x.T, atol=1e-5) and torch.allclose(onednn(w, x[:1]), w @ x[:1].T,
                                                                                   atol=1e-5):
                wide = onednn
        except (RuntimeError, AttributeError):
            pass
    narrow = native.decode_linear()
    if narrow is None:
        return wide
    return lambda weight, x: narrow(weight, x) if 0 < x.shape[0] <= native.MAX_COLUMNS and weight.is_contiguous() \
        else wide(weight, x)
