"""Continuous-batching decoder for Llama-architecture models (Llama, Mistral, Qwen2, SmolLM) on a static KV pool.

- Static KV cache: one preallocated pool per layer of `capacity` token rows, (kv_heads, capacity, head_dim); each
  request owns a contiguous region (prompt + max_new_tokens) from admission to its end, and a step writes the new
  keys and values in place (no concatenation, no mask rebuilt per step). The pool is kept across calls.
- Continuous batching: up to `slots` requests decode together; when one ends, its region returns to the pool and the
  next queued request (the queue is sorted by length: length bucketing) is prefilled and joins the next step.
- Prefill packs the admitted prompts into forwards of up to `PREFILL_TOKENS_*` tokens: every projection runs once over
  all their tokens (large matrix products instead of one prompt's), attention is causal within each prompt (no
  padding, no block mask), and the keys and values go straight into each request's region. Decode steps run one token
  per row through the same lean forward: rotary tables computed once per step for all layers, attention per row over
  its own length only (one fused attention call per row and layer, grouped-query heads without repeating keys), the
  vocabulary head on live rows only (in prefill: on each prompt's last token), no per-layer module dispatch, and on
  CPUs the decode projections and the vocabulary head as oneDNN linears on weights packed once (a 16-row step's
  matrix products run up to ~1.8x faster than MKL's on unpacked weights; memory: one packed copy of the weights).
  Greedy outputs equal `model.generate` one prompt at a time (tested; the sums run in another order, so a near-tie
  between two tokens could in principle break the other way).
- `dtype="bfloat16"` decodes with bfloat16 copies of the weights and KV; prefill stays in the model's dtype (an
  option: on CPUs without bf16 units it is slower, and outputs may differ from float32;
  `benchmarks/bench_generate.py --decode-dtype` reports agreement).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

ARCHITECTURES = ("llama", "mistral", "qwen2")  # same block: RMSNorm, rotary q/k, grouped-query attention, SwiGLU
# prompt tokens per packed prefill forward (a longer prompt runs alone): on CPUs small enough for the activations to
# stay in cache (measured: 1024 beat 4096 by ~10% on SmolLM2), on GPUs large enough to fill the device
PREFILL_TOKENS_CPU, PREFILL_TOKENS_GPU = 1024, 8192
MIN_SHARED = 8  # shared leading tokens from which a packed prefill computes them once


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

    def __init__(self, model, dtype: torch.dtype | None = None):
        cfg, inner = model.config, model.model
        own = next(model.parameters()).dtype
        self.dtype = dtype or own
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        attn0 = inner.layers[0].self_attn
        self.head_dim = getattr(attn0, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = getattr(attn0, "scaling", self.head_dim ** -0.5)
        self.device = inner.embed_tokens.weight.device
        self.inv_freq = inner.rotary_emb.inv_freq.float()
        self.rope_scale = float(getattr(inner.rotary_emb, "attention_scaling", 1.0))
        # decode weights in `dtype` (packed for oneDNN on CPUs: faster for a step's few rows); prefill runs the
        # model's own tensors (MKL's products on a prefill's many rows beat the packed ones by ~8% on CPUs)
        pack = _packer(self.device, self.dtype)
        self.weights = _Weights(model, self.dtype, pack)
        self.prefill_weights = self.weights if pack is _same and self.dtype == own else _Weights(model, own, _same)
        self.prefill_tokens = PREFILL_TOKENS_CPU if self.device.type == "cpu" else PREFILL_TOKENS_GPU
        self.pool: KVPool | None = None

    def _pool(self, capacity: int) -> KVPool:
        if self.pool is None or self.pool.capacity < capacity:
            self.pool = None  # free the old one first
            self.pool = KVPool(len(self.weights.layers), self.kv_heads, self.head_dim, capacity, self.dtype,
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
        logits = torch.empty(0, self.weights.embed.shape[0], device=self.device)
        try:
            while queue or active:
                fresh: list[_Row] = []
                while queue and len(active) + len(fresh) < slots:
                    start = pool.take(need(queue[0]))
                    if start is None:
                        break
                    i = queue.popleft()
                    fresh.append(_Row(i, start, 0))
                    active.append(fresh[-1])  # given back by `finally` should the prefill fail
                if fresh:
                    held = [(seqs[r.index], r) for r in active[:len(active) - len(fresh)]]
                    logits = torch.cat([logits, self.prefill([seqs[r.index] for r in fresh], fresh, held)])
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

    def prefill(self, seqs: list[list[int]], rows: list[_Row], held: list[tuple[list[int], _Row]] = ()
                ) -> torch.Tensor:
        """Run prompts packed into forwards of up to `prefill_tokens` tokens, keys and values written into each
        row's region; returns each prompt's last-position logits (B, V) in float32. `held`: (prompt, row) of the
        requests whose keys are in the pool already (their leading tokens can be shared)."""
        out, chunk, size, held = [], [], 0, list(held)
        for ids, r in zip(seqs, rows):
            if chunk and size + len(ids) > self.prefill_tokens:
                out.append(self._prefill_chunk(chunk, held))
                held += chunk
                chunk, size = [], 0
            chunk.append((ids, r))
            size += len(ids)
        out.append(self._prefill_chunk(chunk, held))
        return torch.cat(out)

    def _prefill_chunk(self, chunk: list[tuple[list[int], _Row]], held: list[tuple[list[int], _Row]]
                       ) -> torch.Tensor:
        """One packed forward. Prefix sharing: where the chunk's prompts start with the same tokens as a prompt
        whose keys are in the pool (or as the chunk's first prompt), such as a chat template's system turn, they feed
        only the rest, their regions given a copy of those tokens' keys and values layer by layer (the same
        numbers, fewer products)."""
        w, rows = self.prefill_weights, [r for _, r in chunk]
        exact = w.dtype == self.pool.k[0].dtype  # the pool holds the prefill's own keys: they can be attended
        source, shared = chunk[0], 0
        for ids, r in (held or chunk[:1]) if exact else ():
            n = _shared_prefix(ids, [c for c, _ in chunk])
            if n > shared:
                source, shared = (ids, r), n
        if shared < MIN_SHARED:
            shared = 0
        feeds, spans, a = [], [], 0
        for ids, r in chunk:
            skip = 0 if r is source[1] else shared
            feeds.append((skip, ids[skip:], r))
            spans.append((a, a + len(ids) - skip, r.start, skip))
            a += len(ids) - skip
            r.length = len(ids)
        pos = torch.cat([torch.arange(skip, skip + len(f)) for skip, f, _ in feeds]).to(self.device)
        at = torch.cat([torch.arange(r.start + skip, r.start + r.length) for skip, _, r in feeds]).to(self.device)
        tokens = torch.tensor([t for _, f, _ in feeds for t in f], device=self.device)
        plan = _Prefill(spans, [(r.start, r.start + r.length) for r in rows], exact,
                        torch.tensor([e - 1 for _, e, _, _ in spans], device=self.device),
                        source[1].start, shared, [start for _, _, start, skip in spans if skip])
        return self._forward(tokens, pos, at, w, plan)

    def step(self, tokens: list[int], rows: list[_Row]) -> torch.Tensor:
        """Feed one token per row at its next position; returns next-token logits (B, V) in float32."""
        pos = torch.tensor([r.length for r in rows], device=self.device)
        at = torch.tensor([r.start + r.length for r in rows], device=self.device)  # where the new keys/values go
        for r in rows:
            r.length += 1
        return self._forward(torch.tensor(tokens, device=self.device), pos, at, self.weights,
                             [(r.start, r.start + r.length) for r in rows])

    def _forward(self, tokens: torch.Tensor, pos: torch.Tensor, at: torch.Tensor, w: _Weights,
                 plan: _Prefill | list[tuple[int, int]]) -> torch.Tensor:
        """The model's layers on `tokens` (at positions `pos`), keys and values stored at pool rows `at`; returns
        float32 logits. Decode: `plan` lists each row's pool region, its one new token attending all of it.
        Prefill (`_Prefill`): each prompt's new tokens attend causally within its region; in the last layer only
        each prompt's last token goes on (the other tokens' keys and values are all later steps need)."""
        pool, dt, n = self.pool, w.dtype, len(tokens)
        prefill = plan if isinstance(plan, _Prefill) else None
        freqs = pos[:, None].float() * self.inv_freq[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.rope_scale).to(dt)
        sin = (emb.sin() * self.rope_scale).to(dt)
        hd, kvh, group, heads = self.head_dim, self.kv_heads, self.heads // self.kv_heads, self.heads
        lin, final = w.linear, len(w.layers) - 1
        x = F.embedding(tokens, w.embed)
        for layer, (w1, e1, attn_in, o_, w2, e2, mlp_in, d_) in enumerate(w.layers):
            h = _rms(x, w1, e1)
            q, k, v = _project(lin, h, attn_in)
            k = _rope(k.view(n, kvh, hd), cos, sin)
            v = v.view(n, kvh, hd)
            kc, vc = pool.k[layer], pool.v[layer]
            kc[:, at] = k.transpose(0, 1).to(kc.dtype)
            vc[:, at] = v.transpose(0, 1).to(vc.dtype)
            if prefill is not None:
                prefill.share(kc, vc)
            trimmed = prefill is not None and prefill.exact and layer == final  # on with each last token only
            if trimmed:
                sel = prefill.last
                x, q, cos, sin, n = x[sel], q[sel], cos[sel], sin[sel], len(sel)
            out = torch.empty(n, heads, hd, dtype=dt, device=self.device)
            if prefill is not None and not trimmed:  # each prompt's new tokens causally (grouped-query heads)
                q = _rope(q.view(n, heads, hd), cos, sin).transpose(0, 1)[None]
                k, v = k.transpose(0, 1)[None], v.transpose(0, 1)[None]
                for a, e, start, skip in prefill.spans:
                    if skip:  # after the shared tokens: over the whole region, causal with placeholder queries
                        # for the shared positions (their outputs unused; a causal kernel, no mask: ~1.7x faster)
                        keys, vals = kc[None, :, start:start + skip + e - a], vc[None, :, start:start + skip + e - a]
                        qs = torch.cat([q.new_zeros(1, heads, skip, hd), q[..., a:e, :]], dim=2)
                        o = F.scaled_dot_product_attention(qs, keys, vals, is_causal=True, scale=self.scale,
                                                           enable_gqa=True)[..., skip:, :]
                    else:
                        o = F.scaled_dot_product_attention(q[..., a:e, :], k[..., a:e, :], v[..., a:e, :],
                                                           is_causal=True, scale=self.scale, enable_gqa=True)
                    out[a:e] = o[0].transpose(0, 1)
            else:  # each row's one query over its region (a decode step's rows, or a trimmed prompt's last token)
                q = _rope(q.reshape(n, 1, kvh, group, hd), cos, sin)
                for b, (a, e) in enumerate(prefill.regions if trimmed else plan):
                    out[b] = F.scaled_dot_product_attention(q[b], kc[None, :, a:e], vc[None, :, a:e],
                                                            scale=self.scale).view(heads, hd)
            x = x + lin(out.view(n, -1), *o_)
            gate, up = _project(lin, _rms(x, w2, e2), mlp_in)
            x = x + lin(F.silu(gate) * up, *d_)
        if prefill is not None and not prefill.exact:
            x = x[prefill.last]
        return lin(_rms(x, *w.norm), *w.head).float()


@dataclass
class _Prefill:
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


def _shared_prefix(first: list[int], seqs: list[list[int]]) -> int:
    """Leading tokens of `first` that every one of `seqs` starts with; each of `seqs` keeps at least one token of its
    own to feed."""
    n = min([len(first)] + [len(s) - 1 for s in seqs])
    for s in seqs:
        i = 0
        while i < n and s[i] == first[i]:
            i += 1
        n = i
    return max(n, 0)


def _project(lin: Callable, h: torch.Tensor, parts: list) -> list[torch.Tensor]:
    """The outputs of projections sharing an input: one product on their fused weight (split by `sizes`), or one
    per weight."""
    if len(parts) == 1:
        out = lin(h, *parts[0][0])
        return list(out.split(parts[0][1], dim=-1))
    return [lin(h, *p) for p, _ in parts]


class _Weights:
    """One model's decoder weights in one dtype, as tuples per layer (no module dispatch), with their linear.
    Packed (CPU) weights fuse q/k/v and gate/up into one matrix each (the packed copy exists anyway); otherwise the
    model's own tensors are used, unfused (no second copy)."""

    def __init__(self, model, dtype: torch.dtype, pack: Callable):
        inner = model.model
        self.dtype = dtype
        cast = (lambda t: t) if dtype == next(model.parameters()).dtype else (lambda t: t.to(dtype))
        lin = lambda m: (pack(cast(m.weight)), None if m.bias is None else cast(m.bias))  # noqa: E731
        fuse = pack is not _same

        def group(*mods):  # [((weight, bias), split sizes)]: one fused entry, or one per module
            if not fuse:
                return [(lin(m), None) for m in mods]
            weight = pack(torch.cat([cast(m.weight) for m in mods]))
            bias = None if mods[0].bias is None else torch.cat([cast(m.bias) for m in mods])
            return [((weight, bias), [m.weight.shape[0] for m in mods])]

        self.linear = _packed_linear if fuse else F.linear
        self.layers = []
        for layer in inner.layers:
            a, p = layer.self_attn, layer.mlp
            self.layers.append((cast(layer.input_layernorm.weight), layer.input_layernorm.variance_epsilon,
                                group(a.q_proj, a.k_proj, a.v_proj), lin(a.o_proj),
                                cast(layer.post_attention_layernorm.weight),
                                layer.post_attention_layernorm.variance_epsilon,
                                group(p.gate_proj, p.up_proj), lin(p.down_proj)))
        self.norm = (cast(inner.norm.weight), inner.norm.variance_epsilon)
        self.embed = cast(inner.embed_tokens.weight)
        self.head = lin(model.get_output_embeddings())


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
