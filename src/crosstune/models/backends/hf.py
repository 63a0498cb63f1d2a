"""A local transformers model as a backend: batched log-likelihood that shares each prompt across its options,
and batched left-padded generation.

Log-likelihood follows lm-evaluation-harness exactly in what it computes (trailing context whitespace moves into
the continuation; the continuation is `enc(context + continuation)[len(enc(context)):]`; sum of log-probs; greedy
flag), so chosen options agree with lm-eval. It is faster because each distinct context runs once: a context and
all its options are packed into one row ([context | option 1 | option 2 | ...], each option attending to the
context and to itself only, through a 4D mask and restarted position ids), and the vocabulary head runs only on
the positions whose next token is scored (the context's last token and each option's inputs). Models whose head
is not a plain linear layer (logit soft-capping, scaling) use the two-pass path: the context once with its KV cache,
then the options on copies of it.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult

MAX_BATCH_TOKENS = 8192  # padded prompt tokens per forward: long prompts get smaller batches
MAX_CACHED_TOKENS = 24_000  # rows x context tokens per option forward; bounds KV-cache copies (~1 GB for SmolLM2)


class HFBackend:
    name = "hf"

    def __init__(self, model: str = "default", dtype: str = "float32", batch_size: int = 32,
                 trust_remote_code: bool = False, *, model_obj=None, tokenizer=None, device: str = "auto",
                 decode_dtype: str | None = None):
        """decode_dtype: "bfloat16" decodes generations of Llama-architecture models with bf16 weights and KV cache
        (prefill and log-likelihood stay in `dtype`); part of the fingerprint, since outputs may differ."""
        from crosstune.errors import CrosstuneError
        from crosstune.models.device import model_device, pick_device
        from crosstune.models.loading import load_model, load_tokenizer

        if decode_dtype not in (None, "float32", "bfloat16", "float16"):
            raise CrosstuneError(f"backend hf: decode_dtype {decode_dtype!r}: expected bfloat16, float16 or float32")
        self.decode_dtype = decode_dtype

        self.tok = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.model = model_obj or load_model(model, dtype=dtype, trust_remote_code=trust_remote_code)
        if model_obj is None:  # a model handed over stays where its owner put it
            self.model.to(pick_device(device))
        self.device = model_device(self.model)
        self.model.eval()
        self.batch_size = batch_size
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 4096) or 4096)
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        self._spec, self._dtype = (None if model_obj is not None else model), dtype  # for `fingerprint`
        self.loglik_stats = {"tokens": 0, "head_positions": 0}  # work done by the packed scorer (benchmarks)

    # ---- log-likelihood -------------------------------------------------------------------------------
    def _encode_pair(self, context, continuation) -> tuple[tuple[int, ...], list[int]]:
        """Ids as sent (`Prompter.score`), or raw text through the one renderer (lm-eval's split, default BOS)."""
        if isinstance(context, str):
            from crosstune.models.render import score_ids

            s = score_ids([{"role": "user", "content": context}], continuation, "raw", self.tok)
            ctx, cont = s.ids[:s.context_length], s.ids[s.context_length:]
        else:
            ctx, cont = list(context), list(continuation)
        if not cont or not ctx:
            raise ValueError(f"empty context or continuation ids: {context!r} / {continuation!r}")
        budget = self.max_length - len(cont)
        return tuple(ctx[-budget:]), cont

    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        from crosstune.models.device import is_out_of_memory, out_of_memory

        try:
            return self._loglikelihood(requests)
        except (RuntimeError, MemoryError) as e:
            if not is_out_of_memory(e):
                raise
            raise out_of_memory("log-likelihood", f"batch size {self.batch_size} ({len(requests)} requests)",
                                "a smaller --batch-size (or batch_size in the backend spec)", self.device) from None

    @torch.inference_mode()
    def _loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        by_context: dict[tuple[int, ...], list[tuple[int, list[int]]]] = defaultdict(list)
        for i, r in enumerate(requests):
            ctx, cont = self._encode_pair(r.context, r.continuation)
            by_context[ctx].append((i, cont))
        results: list[LoglikResult | None] = [None] * len(requests)
        if self._packable():
            def packed_len(c):  # the context plus every option's input tokens
                return len(c) + sum(len(cont) - 1 for _, cont in by_context[c])

            contexts = sorted(by_context, key=packed_len, reverse=True)
            # rows of nearly equal length: padding is computed like real tokens, an extra forward call costs little
            for batch in _token_batches(contexts, self.batch_size, MAX_BATCH_TOKENS, packed_len, min_fill=0.95):
                for i, res in self._score_packed(batch, [by_context[c] for c in batch]):
                    results[i] = res
            return results  # type: ignore[return-value]
        contexts = sorted(by_context, key=len, reverse=True)  # similar lengths share a batch: little padding
        for batch in _token_batches(contexts, self.batch_size, MAX_BATCH_TOKENS):
            for i, res in self._score_batch(batch, [by_context[c] for c in batch]):
                results[i] = res
        return results  # type: ignore[return-value]

    def _packable(self) -> bool:
        """A plain linear head after the decoder, and an attention that takes a 4D boolean mask."""
        if getattr(self, "_packed_ok", None) is None:
            cfg = self.model.config
            head = self.model.get_output_embeddings()
            self._packed_ok = (isinstance(head, torch.nn.Linear) and not getattr(cfg, "final_logit_softcapping", None)
                               and getattr(cfg, "logit_scale", None) in (None, 1, 1.0)
                               and getattr(cfg, "_attn_implementation", "sdpa") in ("sdpa", "eager")
                               and not getattr(cfg, "is_encoder_decoder", False))
        return self._packed_ok

    def _score_packed(self, contexts, options):
        """One forward per batch of rows [context | option inputs ...]; head only on scored positions."""
        rows, segs, poss, flat, sel, targets, owners = [], [], [], [], [], [], []
        for b, (ctx, opts) in enumerate(zip(contexts, options)):
            toks, seg, pos = list(ctx), [0] * len(ctx), list(range(len(ctx)))
            last = len(flat)  # the context's last token predicts every option's first token: one head row
            flat.append((b, len(ctx) - 1))
            for j, (i, cont) in enumerate(opts, 1):
                start = len(toks)
                inputs = cont[:-1]  # the last token is only a target, never an input
                toks += inputs
                seg += [j] * len(inputs)
                pos += range(len(ctx), len(ctx) + len(inputs))
                sel.append([last] + list(range(len(flat), len(flat) + len(inputs))))
                flat += [(b, start + k) for k in range(len(inputs))]  # each input predicts the next token
                targets.append(cont)
                owners.append(i)
            rows.append(toks)
            segs.append(seg)
            poss.append(pos)
        n = max(len(r) for r in rows)
        dev = self.device
        ids = torch.tensor([r + [self.pad_id] * (n - len(r)) for r in rows], device=dev)
        seg = torch.tensor([s + [-1] * (n - len(s)) for s in segs], device=dev)
        pos = torch.tensor([p + [0] * (n - len(p)) for p in poss], device=dev)
        idx = torch.arange(n, device=dev)
        causal = idx.unsqueeze(1) >= idx.unsqueeze(0)  # (q, k): k <= q
        sq, sk = seg.unsqueeze(2), seg.unsqueeze(1)
        mask = causal & (sk != -1) & ((sk == 0) | (sk == sq))  # the context, or the query's own option
        pad_self = torch.eye(n, dtype=torch.bool, device=dev).unsqueeze(0) & (sq == -1)
        mask |= pad_self  # padding attends to itself (no NaN rows)
        hidden = self.model.get_decoder()(input_ids=ids, attention_mask=mask.unsqueeze(1), position_ids=pos,
                                          use_cache=False).last_hidden_state
        at = torch.tensor(flat, device=dev)
        self.loglik_stats["tokens"] += sum(len(r) for r in rows)  # forwarded (unpadded) tokens
        self.loglik_stats["head_positions"] += len(flat)
        logits = self.model.get_output_embeddings()(hidden[at[:, 0], at[:, 1]]).float()
        top, norm = logits.max(-1).values, torch.logsumexp(logits, dim=-1)  # no (positions x vocab) log-softmax copy
        for i, cont, s in zip(owners, targets, sel):
            rows_ = torch.tensor(s, device=dev)
            picked = logits[rows_, torch.tensor(cont, device=dev)]
            yield i, LoglikResult(float((picked - norm[rows_]).sum()), bool((picked >= top[rows_]).all()))

    def _score_batch(self, contexts, options):
        ids, mask = self._left_pad([list(c) for c in contexts])
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                         use_cache=True, logits_to_keep=1)
        last = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V): the first option token's scores
        longer = []  # (result index, batch row, tokens) of options with more than one token
        for b, opts in enumerate(options):
            for i, cont in opts:
                if len(cont) == 1:
                    yield i, LoglikResult(float(last[b, cont[0]]), bool(last[b].argmax() == cont[0]))
                else:
                    longer.append((i, b, cont))
        if longer:
            longer.sort(key=lambda x: len(x[2]), reverse=True)  # similar option lengths share a chunk
            kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            rows = max(1, MAX_CACHED_TOKENS // ids.shape[1])  # bounds the copied KV cache
            for chunk in _token_batches(longer, rows, MAX_BATCH_TOKENS, lambda x: len(x[2])):
                yield from self._score_continuations(chunk, kv, mask, last)

    def _score_continuations(self, chunk, kv, ctx_mask, last):
        from transformers import DynamicCache

        rows = torch.tensor([b for _, b, _ in chunk], device=self.device)
        inputs = [cont[:-1] for _, _, cont in chunk]  # the last token is only a target, never an input
        ids, opt_mask = self._right_pad(inputs)
        cache = DynamicCache(ddp_cache_data=[(k[rows], v[rows]) for k, v in kv], config=self.model.config)
        start = ctx_mask[rows].sum(-1, keepdim=True)
        pos = start + torch.arange(ids.shape[1], device=self.device).unsqueeze(0)
        mask = torch.cat([ctx_mask[rows], opt_mask], dim=1)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                            use_cache=True).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for j, (i, b, cont) in enumerate(chunk):
            n = len(cont) - 1
            tgt = torch.tensor(cont[1:], device=self.device)
            first = last[b, cont[0]]
            rest = logp[j, :n].gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            greedy = bool(last[b].argmax() == cont[0]) and bool((logp[j, :n].argmax(-1) == tgt).all())
            yield i, LoglikResult(float(first + rest.sum()), greedy)

    def _left_pad(self, seqs: list[list[int]]):
        n = max(len(s) for s in seqs)
        ids = torch.tensor([[self.pad_id] * (n - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (n - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _right_pad(self, seqs: list[list[int]]):
        n = max(len(s) for s in seqs)
        ids = torch.tensor([s + [self.pad_id] * (n - len(s)) for s in seqs], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=self.device)
        return ids, mask

    # ---- generation (crosstune.models.backends.hf_generate) -----------------------------------------------
    @property
    def generator(self):
        from crosstune.models.backends.hf_generate import HFGenerator

        if getattr(self, "_generator", None) is None:
            self._generator = HFGenerator(self.model, self.tok, self.batch_size, self.pad_id,
                                          decode_dtype=self.decode_dtype)
        self._generator.batch_size = self.batch_size
        return self._generator

    def render(self, prompt) -> list[int]:
        """The prompt ids a generation request gets (see `HFGenerator.render`)."""
        return self.generator.render(prompt)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        return self.generator.generate(requests)

    def generate_iter(self, requests: list[GenerateRequest]):
        return self.generator.generate_iter(requests)

    @property
    def tokens_generated(self) -> int:
        return self.generator.tokens_generated

    @property
    def fingerprint(self) -> str:
        """Weights hash of the model (crosstune.models.fingerprint) plus the dtype: the call cache's identity."""
        if getattr(self, "_fingerprint", None) is None:
            from crosstune.models.fingerprint import model_fingerprint
            from crosstune.models.loading import resolve_model

            path = getattr(self.model.config, "_name_or_path", "") if self._spec is None else resolve_model(self._spec)
            decode = f":decode-{self.decode_dtype}" if self.decode_dtype else ""
            self._fingerprint = f"{model_fingerprint(path)}:{self._dtype}{decode}"
        return self._fingerprint


def _token_batches(seqs, batch_size: int, max_tokens: int, length=len, min_fill: float = 0.8):
    """Split length-sorted (longest first) sequences into batches of at most `batch_size` rows and `max_tokens`
    padded tokens, starting a new batch when a sequence is shorter than `min_fill` of the batch's longest: on a
    CPU a small batch costs little, padding costs its full share (a single over-long sequence runs alone)."""
    batch: list = []
    for s in seqs:
        if batch and (len(batch) == batch_size or (len(batch) + 1) * length(batch[0]) > max_tokens
                      or length(s) < min_fill * length(batch[0])):
            yield batch
            batch = []
        batch.append(s)
    if batch:
        yield batch


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)
