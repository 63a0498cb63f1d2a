"""Continuous-batching decoder for Llama-architecture models (Llama, Mistral, Qwen2, SmolLM) on a static KV pool.

- Static KV cache: one preallocated pool per layer of `capacity` token rows, (kv_heads, capacity, head_dim); each
  request owns a contiguous region (prompt + max_new_tokens) from admission to its end, and a step writes the new
  keys and values in place (no concatenation, no mask rebuilt per step). The pool is kept across calls.
- Continuous batching: up to `slots` requests decode together; when one ends, its region returns to the pool and the
  next queued request (the queue is sorted by length: length bucketing) is prefilled and joins the next step.
- Prefill runs the transformers model itself on the prompt alone (the same numbers as `model.generate`'s first
  step); decode steps run the model's own weights through a lean forward: rotary tables computed once per step for
  all layers, attention per row over its own length only (one fused attention call per row and layer, grouped-query
  heads without repeating keys, no padding), the vocabulary head on live rows only, no per-layer module dispatch,
  and on CPUs the projections and the vocabulary head as oneDNN linears on weights packed once (a 16-row step's
  matrix products run up to ~1.8x faster than MKL's on unpacked weights; memory: one packed copy of the weights).
- `dtype="bfloat16"` decodes with bfloat16 copies of the weights and KV (an option: on CPUs without bf16 units it is
  slower, and outputs may differ from float32; `benchmarks/bench_generate.py --decode-dtype` reports agreement).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

ARCHITECTURES = ("llama", "mistral", "qwen2")  # same block: RMSNorm, rotary q/k, grouped-query attention, SwiGLU


def unsupported(model) -> str | None:
    """Why `LeanDecoder` cannot run this model (None when it can): other architectures use the generic path."""
    cfg = model.config
    if getattr(cfg, "model_type", None) not in ARCHITECTURES:
        return f"model type {getattr(cfg, 'model_type', None)!r}"
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "pretraining_tp", 1) not in (None, 1):
        return "activation or tensor-parallel head split"
    window = getattr(cfg, "sliding_window", None) if getattr(cfg, "use_sliding_window", True) else None
    if window:
        return "sliding-window attention"
    if getattr(cfg, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
        return f"attention {cfg._attn_implementation!r}"
    inner = getattr(model, "model", None)
    rot = getattr(inner, "rotary_emb", None)
    if rot is None or not hasattr(rot, "inv_freq") or "dynamic" in str(getattr(rot, "rope_type", "")) \
            or "longrope" in str(getattr(rot, "rope_type", "")):
        return "rotary embedding (dynamic or missing)"
    attn = inner.layers[0].self_attn
    if any(hasattr(attn, n) for n in ("q_norm", "k_norm")) or not hasattr(inner.layers[0].mlp, "gate_proj"):
        return "layer structure"
    names = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
             "mlp.up_proj", "mlp.down_proj")
    projections = [layer.get_submodule(n) for layer in inner.layers for n in names]
    if any(type(m) is not torch.nn.Linear for m in projections + [model.get_output_embeddings()]):
        return "adapter, quantized or custom projections (their extra terms would be skipped)"
    return None


@dataclass
class _Row:
    index: int  # request index in the caller's list
    start: int  # first pool row of its region
    length: int  # tokens in the cache
    tokens: list[int] = field(default_factory=list)  # new tokens so far


class KVPool:
    """Keys and values for every layer, (kv_heads, capacity, head_dim) each; contiguous regions handed out
    first-fit and merged back when returned."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, capacity: int, dtype: torch.dtype,
                 device: torch.device):
        self.capacity = capacity
        self.k = [torch.zeros(kv_heads, capacity, head_dim, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.zeros(kv_heads, capacity, head_dim, dtype=dtype, device=device) for _ in range(layers)]
        self.free = [(0, capacity)]

    def take(self, n: int) -> int | None:
        for j, (a, b) in enumerate(self.free):
            if b - a >= n:
                self.free[j:j + 1] = [(a + n, b)] if b - a > n else []
                return a
        return None

    def give(self, start: int, n: int) -> None:
        self.free = sorted(self.free + [(start, start + n)])
        merged = [self.free[0]]
        for a, b in self.free[1:]:
            if a == merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        self.free = merged


class LeanDecoder:
    """Decode many requests on one model: `stream(...)` yields (index, new tokens) as each request ends."""

    def __init__(self, model, prefill: Callable, dtype: torch.dtype | None = None):
        self.model, self.prefill = model, prefill  # prefill(ids) -> (last logits (V,), [(keys, values)] per layer)
        cfg, inner = model.config, model.model
        self.dtype = dtype or next(model.parameters()).dtype
        cast = (lambda t: t) if self.dtype == next(model.parameters()).dtype else (lambda t: t.to(self.dtype))
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        attn0 = inner.layers[0].self_attn
        self.head_dim = getattr(attn0, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = getattr(attn0, "scaling", self.head_dim ** -0.5)
        self.device = inner.embed_tokens.weight.device
        pack = _packer(self.device, self.dtype)
        lin = lambda m: (pack(cast(m.weight)), None if m.bias is None else cast(m.bias))  # noqa: E731
        self.linear = _packed_linear if pack is not _same else F.linear
        self.layers = []
        for layer in inner.layers:
            a, p = layer.self_attn, layer.mlp
            self.layers.append((cast(layer.input_layernorm.weight), layer.input_layernorm.variance_epsilon,
                                lin(a.q_proj), lin(a.k_proj), lin(a.v_proj), lin(a.o_proj),
                                cast(layer.post_attention_layernorm.weight),
                                layer.post_attention_layernorm.variance_epsilon,
                                lin(p.gate_proj), lin(p.up_proj), lin(p.down_proj)))
        self.norm = (cast(inner.norm.weight), inner.norm.variance_epsilon)
        self.embed = cast(inner.embed_tokens.weight)
        self.head = lin(model.get_output_embeddings())
        self.inv_freq = inner.rotary_emb.inv_freq.float()
        self.rope_scale = float(getattr(inner.rotary_emb, "attention_scaling", 1.0))
        self.pool: KVPool | None = None

    def _pool(self, capacity: int) -> KVPool:
        if self.pool is None or self.pool.capacity < capacity:
            self.pool = None  # free the old one first
            self.pool = KVPool(len(self.layers), self.kv_heads, self.head_dim, capacity, self.dtype,
                               self.device)
        return self.pool

    @torch.inference_mode()
    def stream(self, seqs: list[list[int]], max_new: int, choose: Callable, eos: set[int], stopped: Callable,
               slots: int, capacity: int) -> Iterator[tuple[int, list[int]]]:
        """choose(logits (B, V) float32, request indices) -> next ids (B,); a request ends at an `eos` id (not
        kept), at max_new tokens or when stopped(index, tokens) (a stop string). Longest requests first; each holds
        prompt + max_new pool rows while it runs."""
        need = lambda i: len(seqs[i]) + max_new  # noqa: E731
        queue = deque(sorted(range(len(seqs)), key=need, reverse=True))
        if not queue:
            return
        pool = self._pool(max(capacity, need(queue[0])))
        active: list[_Row] = []
        logits = torch.empty(0, self.embed.shape[0], device=self.device)
        try:
            while queue or active:
                fresh = []
                while queue and len(active) + len(fresh) < slots:
                    start = pool.take(need(queue[0]))
                    if start is None:
                        break
                    i = queue.popleft()
                    last, kv = self.prefill(seqs[i])
                    for layer, (k, v) in enumerate(kv):
                        pool.k[layer][:, start:start + len(seqs[i])] = k[0]
                        pool.v[layer][:, start:start + len(seqs[i])] = v[0]
                    fresh.append((_Row(i, start, len(seqs[i])), last))
                if fresh:
                    active += [r for r, _ in fresh]
                    logits = torch.cat([logits, torch.stack([lg for _, lg in fresh])])
                nxt = choose(logits, [r.index for r in active]).tolist()
                keep = []
                for b, (r, t) in enumerate(zip(active, nxt)):
                    if t not in eos:
                        r.tokens.append(t)
                    if t in eos or len(r.tokens) >= max_new or stopped(r.index, r.tokens):
                        pool.give(r.start, need(r.index))
                        yield r.index, r.tokens
                    else:
                        keep.append(b)
                active = [active[b] for b in keep]
                logits = self.step([nxt[b] for b in keep], active) if active else logits[:0]
        finally:
            for r in active:  # an abandoned stream returns its regions
                pool.give(r.start, need(r.index))

    def step(self, tokens: list[int], rows: list[_Row]) -> torch.Tensor:
        """Feed one token per row at its next position; returns next-token logits (B, V) in float32."""
        pool, dt, n = self.pool, self.dtype, len(rows)
        pos = torch.tensor([r.length for r in rows], device=self.device)
        at = torch.tensor([r.start + r.length for r in rows], device=self.device)  # where the new keys/values go
        freqs = pos[:, None].float() * self.inv_freq[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.rope_scale).to(dt)
        sin = (emb.sin() * self.rope_scale).to(dt)
        spans = [(r.start, r.start + r.length + 1) for r in rows]
        hd, kvh, group = self.head_dim, self.kv_heads, self.heads // self.kv_heads
        lin = self.linear
        x = F.embedding(torch.tensor(tokens, device=self.device), self.embed)
        out = torch.empty(n, self.heads, hd, dtype=dt, device=self.device)
        for layer, (w1, e1, q_, k_, v_, o_, w2, e2, g_, u_, d_) in enumerate(self.layers):
            h = _rms(x, w1, e1)
            q = _rope(lin(h, *q_).view(n, 1, kvh, group, hd), cos, sin)
            k = _rope(lin(h, *k_).view(n, kvh, hd), cos, sin)
            kc, vc = pool.k[layer][None], pool.v[layer][None]
            kc[0, :, at] = k.transpose(0, 1)
            vc[0, :, at] = lin(h, *v_).view(n, kvh, hd).transpose(0, 1)
            for b, (a, e) in enumerate(spans):  # each row over its own keys: a kv head's query heads as its queries
                out[b] = F.scaled_dot_product_attention(q[b], kc[:, :, a:e], vc[:, :, a:e], scale=self.scale).view(
                    self.heads, hd)
            x = x + lin(out.view(n, -1), *o_)
            h = _rms(x, w2, e2)
            x = x + lin(F.silu(lin(h, *g_)) * lin(h, *u_), *d_)
        for r in rows:
            r.length += 1
        return lin(_rms(x, *self.norm), *self.head).float()


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm, op for op (float32 statistics)."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' apply_rotary_pos_emb on (rows, ..., head_dim) with per-row (rows, head_dim) tables."""
    cos, sin = cos.view(cos.shape[0], *[1] * (x.dim() - 2), -1), sin.view(sin.shape[0], *[1] * (x.dim() - 2), -1)
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _same(w: torch.Tensor) -> torch.Tensor:
    return w


def _packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def _packer(device: torch.device, dtype: torch.dtype) -> Callable:
    """oneDNN weight packing for float32 CPU decoding when this torch build has it (checked on a small product),
    else the weights as they are."""
    if device.type != "cpu" or dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return _same
    try:
        w, x = torch.randn(8, 4), torch.randn(2, 4)
        if torch.allclose(_packed_linear(x, torch.ops.mkldnn._reorder_linear_weight(w), None), x @ w.T, atol=1e-5):
            return lambda w: torch.ops.mkldnn._reorder_linear_weight(w.detach())
    except (RuntimeError, AttributeError):
        pass
    return _same
