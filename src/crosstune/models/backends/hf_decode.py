"""Continuous-batching decoder for Llama-architecture models (Llama, Mistral, Qwen2, SmolLM) on a static KV pool.

- Static KV cache: one preallocated pool per layer of `capacity` token rows, (kv_heads, capacity, head_dim); each
  request owns a contiguous region (prompt + max_new_tokens) from admission to its end, and a step writes the new
  keys and values in place (no concatenation, no mask rebuilt per step). The pool is kept across calls.
- Continuous batching: up to `slots` requests decode together; when one ends, its region returns to the pool and the
  next queued request (the queue is sorted by length: length bucketing) is prefilled and joins the next step.
- Prefill packs the admitted prompts into forwards of up to `PREFILL_TOKENS_*` tokens: every projection runs once over
  all their tokens (large matrix products instead of one prompt's), attention is causal within each prompt (no
  padding, no block mask), the keys and values go straight into each request's region, and a prefix shared with a
  prompt already in the pool (a chat template's system turn) is copied, not computed. Decode steps run one token per
  row, activations feature-major so every product streams the weight as its large operand (the math of both passes:
  `hf_forward`): rotary tables once per step, attention per row over its own length only, the vocabulary head on
  live rows only (in prefill: on each prompt's last token), no per-layer module dispatch.
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

from crosstune.models.backends.hf_forward import (DecodeWeights, Geometry, Prefill, PrefillWeights, decode_forward,
                                                  prefill_forward)

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
        self.dtype = dtype or next(model.parameters()).dtype
        self.geometry = Geometry.of(model)
        self.device = model.model.embed_tokens.weight.device
        self.weights = DecodeWeights(model, self.dtype)  # feature-major step, in `dtype`
        self.prefill_weights = PrefillWeights(model)  # the model's own tensors, in its dtype
        self.prefill_tokens = PREFILL_TOKENS_CPU if self.device.type == "cpu" else PREFILL_TOKENS_GPU
        self.pool: KVPool | None = None

    def _pool(self, capacity: int) -> KVPool:
        if self.pool is None or self.pool.capacity < capacity:
            self.pool = None  # free the old one first
            g = self.geometry
            self.pool = KVPool(len(self.weights.layers), g.kv_heads, g.head_dim, capacity, self.dtype, self.device)
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
        rows = [r for _, r in chunk]
        exact = self.prefill_weights.dtype == self.pool.k[0].dtype  # the pool holds the prefill's own keys: they can be attended
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
        plan = Prefill(spans, [(r.start, r.start + r.length) for r in rows], exact,
                        torch.tensor([e - 1 for _, e, _, _ in spans], device=self.device),
                        source[1].start, shared, [start for _, _, start, skip in spans if skip])
        return self._prefill_forward(tokens, pos, at, plan)

    def step(self, tokens: list[int], rows: list[_Row]) -> torch.Tensor:
        """Feed one token per row at its next position; returns next-token logits (B, V) in float32."""
        pos = torch.tensor([r.length for r in rows], device=self.device)
        at = torch.tensor([r.start + r.length for r in rows], device=self.device)  # where the new keys/values go
        for r in rows:
            r.length += 1
        return decode_forward(self.geometry, self.pool, torch.tensor(tokens, device=self.device), pos, at, self.weights,
                              [(r.start, r.start + r.length) for r in rows])

    def _prefill_forward(self, tokens: torch.Tensor, pos: torch.Tensor, at: torch.Tensor, plan: Prefill
                         ) -> torch.Tensor:
        """One packed prefill forward (`hf_forward.prefill_forward`); returns each prompt's last-position logits."""
        return prefill_forward(self.geometry, self.pool, tokens, pos, at, self.prefill_weights, plan)


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
