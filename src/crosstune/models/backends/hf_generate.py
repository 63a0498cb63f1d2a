"""Batched generation for local transformers models. Llama-architecture models (Llama, Mistral, Qwen2, SmolLM) decode
with continuous batching on a static KV pool (`crosstune.models.backends.hf_decode`); other models decode batches on
a left-padded KV cache, finished rows dropped from the batch (and the cache) as they end, where prompts of similar
length prefill as one padded batch and prompts of unequal length prefill one by one and their caches are joined.

Greedy decoding gives the same tokens as `model.generate` one prompt at a time (tested on tiny models, asserted
on the default model in `benchmarks/bench_generate.py`). Sampling draws each row from its own `torch.Generator`
seeded with the request's seed, so a sample does not depend on which other requests share its batch (up to
floating-point differences between batch shapes).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Iterator

import torch

from crosstune.models.backends.base import GenerateRequest, truncate_at_stop

MAX_BATCH_TOKENS = 8192  # padded prompt + new tokens per batch: long prompts get smaller batches
# A row joins a batch while its prompt + new tokens is at least this share of the batch's longest. Far below
# log-likelihood's 0.8: prompts of unequal length prefill one by one (no padding compute), and decoding steps,
# where a 16-row step costs a fraction of 16 one-row steps on a CPU, dominate.
MIN_FILL = 0.25
PAD_TOLERANCE = 1.25  # padded/real prompt tokens up to which prompts prefill as one batch (else one by one)


class HFGenerator:
    """Generation half of `HFBackend`: `generate(requests)` and `generate_iter(requests)` (per finished batch)."""

    def __init__(self, model, tok, batch_size: int = 16, pad_id: int | None = None,
                 max_batch_tokens: int = MAX_BATCH_TOKENS, decode_dtype: str | None = None, lean: bool = True):
        """decode_dtype: "bfloat16" decodes Llama-architecture models with bf16 weights and KV (default: the model's
        dtype); lean=False forces the generic path (benchmarks compare the two)."""
        self.model, self.tok, self.batch_size, self.max_batch_tokens = model, tok, batch_size, max_batch_tokens
        self.decode_dtype, self.lean = decode_dtype, lean
        self.pad_id = pad_id if pad_id is not None else (tok.pad_token_id if tok.pad_token_id is not None
                                                         else tok.eos_token_id)
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = tok.eos_token_id if eos is None else eos
        self.eos_ids = torch.tensor(sorted({int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}))
        self.tokens_generated = 0  # new tokens produced (ended rows stop counting), for tokens/s
        # transformers renamed forward's `past_key_values` to `cache` during 5.x
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def render(self, prompt) -> list[int]:
        """Prompt ids through the one renderer: ids as sent, a raw string (`raw`: the tokenizer's default BOS), or
        chat messages (the model's `auto` template: the recorded one, else its chat template)."""
        from crosstune.models.render import generate_ids

        if isinstance(prompt, (tuple, list)) and all(isinstance(t, int) for t in prompt) and prompt:
            return list(prompt)
        if isinstance(prompt, str):
            return generate_ids([{"role": "user", "content": prompt}], "raw", self.tok).ids
        return generate_ids(list(prompt), "auto", self.tok).ids

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        out: list[str] = [""] * len(requests)
        for i, text in self.generate_iter(requests):
            out[i] = text
        return out

    @torch.inference_mode()
    def generate_iter(self, requests: list[GenerateRequest]) -> Iterator[tuple[int, str]]:
        """(index, text) pairs, a batch at a time; rows of a batch share max_new_tokens, stop, temperature, top_p."""
        from crosstune.models.backends.hf import _token_batches

        encoded = [self.render(r.prompt) for r in requests]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.max_new_tokens, tuple(r.stop), r.temperature, r.top_p)].append(i)
        lean = self.lean_decoder()
        for (max_new, stop, temperature, top_p), idx in groups.items():
            if max_new <= 0:
                yield from ((i, "") for i in idx)
                continue
            if lean is not None:
                gens = ({i: torch.Generator(self.device).manual_seed(int(requests[i].seed)) for i in idx}
                        if temperature > 0 else {})
                choose = lambda lg, rows, t=temperature, p=top_p, g=gens: self._pick(  # noqa: E731
                    lg, t, p, [g[idx[r]] for r in rows] if g else None)
                stopped = (lambda r, toks, st=stop: _has_stop(self.tok, toks, st)) if stop else (lambda r, toks: False)
                eos = set(self.eos_ids.tolist())
                for r, toks in lean.stream([encoded[i] for i in idx], max_new, choose, eos, stopped,
                                           self.batch_size, self.max_batch_tokens):
                    self.tokens_generated += len(toks)
                    yield idx[r], truncate_at_stop(self.tok.decode(toks, skip_special_tokens=True), stop)
                continue
            idx.sort(key=lambda i: len(encoded[i]), reverse=True)  # similar lengths share a batch: little padding
            length = lambda i, n=max_new: len(encoded[i]) + n  # noqa: E731
            for chunk in _token_batches(idx, self.batch_size, self.max_batch_tokens, length, MIN_FILL):
                seeds = [requests[i].seed for i in chunk]
                texts = self.decode_batch([encoded[i] for i in chunk], max_new, stop, temperature, top_p, seeds)
                for i, text in zip(chunk, texts):
                    yield i, truncate_at_stop(text, stop)

    def decode_batch(self, seqs: list[list[int]], max_new: int, stop: tuple[str, ...] = (), temperature: float = 0.0,
                     top_p: float = 1.0, seeds: list[int] | None = None) -> list[str]:
        """Decode a batch on the KV cache; a row leaves the batch at an end-of-sequence token or a stop string."""
        n = len(seqs)
        gens = ([torch.Generator(self.device).manual_seed(int(s)) for s in (seeds or [0] * n)]
                if temperature > 0 else None)
        new: list[list[int]] = [[] for _ in range(n)]
        alive = torch.arange(n)  # original row of each batch row
        logits, cache, mask, positions = self._prefill(seqs)
        for step in range(max_new):
            if step:
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                 logits_to_keep=1, **{self.cache_arg: cache})
                logits = out.logits[:, -1].float()
            nxt = self._pick(logits, temperature, top_p, [gens[r] for r in alive.tolist()] if gens else None)
            ended = torch.isin(nxt.cpu(), self.eos_ids)  # row bookkeeping on the CPU, tensors on the model's
            for b, r in enumerate(alive.tolist()):
                if not ended[b]:
                    new[r].append(int(nxt[b]))
            self.tokens_generated += int((~ended).sum())
            if stop:
                ended |= torch.tensor([_has_stop(self.tok, new[r], stop) for r in alive.tolist()])
            keep = (~ended).nonzero().squeeze(-1)
            if len(keep) == 0 or step == max_new - 1:
                break
            if len(keep) < len(alive):  # drop finished rows from the batch and the cache
                cache.batch_select_indices(keep.to(self.device))
                alive = alive[keep]
                keep = keep.to(self.device)
                nxt, mask, positions = nxt[keep], mask[keep], positions[keep]
            ids = nxt.unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
            positions = positions + 1
        return self.tok.batch_decode(new, skip_special_tokens=True)

    @property
    def device(self) -> torch.device:
        from crosstune.models.device import model_device

        return model_device(self.model)

    def lean_decoder(self):
        """The continuous-batching decoder when this model's architecture has one (else None: the generic path)."""
        if not self.lean:
            return None
        # it holds packed (or bf16) copies of the weights: rebuilt when they changed in place (training steps)
        version = sum(p._version for p in self.model.parameters())
        if getattr(self, "_lean", None) is None or (self._lean and self._lean_version != version):
            from crosstune.models.backends.hf_decode import LeanDecoder, unsupported

            dtype = getattr(torch, self.decode_dtype) if self.decode_dtype else None
            self._lean = LeanDecoder(self.model, dtype) if unsupported(self.model) is None else False
            self._lean_version = version
        return self._lean or None

    def prefill_one(self, ids: list[int]):
        """One prompt alone, as `model.generate` runs it: (last-position logits (V,) float32, [(keys, values)] per
        layer, each (1, kv_heads, len, head_dim))."""
        out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float(), [(layer.keys, layer.values) for layer in self._cache_of(out).layers]

    def _prefill(self, seqs: list[list[int]]):
        """Run the prompts; returns (last-position logits, KV cache, left-padded mask, last positions (B, 1)).
        Prompts of similar length run as one padded batch; otherwise each runs alone (no compute on padding,
        the same numbers as one-by-one generation) and their caches are left-padded into one batch."""
        lengths = [len(s) for s in seqs]
        width = max(lengths)
        mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], device=self.device)
        last = torch.tensor(lengths, device=self.device).unsqueeze(-1) - 1
        if width * len(seqs) <= PAD_TOLERANCE * sum(lengths):
            ids = torch.tensor([[self.pad_id] * (width - len(s)) + s for s in seqs], device=self.device)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                             use_cache=True, logits_to_keep=1)
            return out.logits[:, -1].float(), self._cache_of(out), mask, last
        from transformers import DynamicCache

        logits, keys, values = [], None, None
        for s in seqs:
            row_logits, layers = self.prefill_one(s)
            logits.append(row_logits)
            pad = (0, 0, width - len(s), 0)  # left-pad the sequence axis of (1, heads, len, dim)
            keys = keys or [[] for _ in layers]
            values = values or [[] for _ in layers]
            for j, (k, v) in enumerate(layers):
                keys[j].append(torch.nn.functional.pad(k, pad))
                values[j].append(torch.nn.functional.pad(v, pad))
        cache = DynamicCache(ddp_cache_data=[(torch.cat(k), torch.cat(v)) for k, v in zip(keys, values)],
                             config=self.model.config)
        return torch.stack(logits), cache, mask, last

    def _cache_of(self, out):
        return out.cache if self.cache_arg == "cache" else out.past_key_values

    @staticmethod
    def _pick(logits: torch.Tensor, temperature: float, top_p: float, gens) -> torch.Tensor:
        if temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:  # nucleus: keep the smallest top set whose mass reaches top_p (as transformers' TopPLogitsWarper)
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, gens)])


def _has_stop(tok, tokens: list[int], stop: tuple[str, ...]) -> bool:
    tail = tok.decode(tokens[-32:], skip_special_tokens=True)  # stop strings are short: the tail suffices
    return any(s and s in tail for s in stop)
