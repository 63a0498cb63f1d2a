"""The pipeline's one model handle: any backend behind `CachedBackend`, with a weights fingerprint as cache
identity, and the seconds spent waiting on model calls (so each block can report its own cost apart).

Blocks send a phase's work as groups (one backend call each: `generate_groups`, `loglikelihood_groups`). Under
`accelerate launch`/`torchrun` process k sends every n-th group that the call cache cannot fully answer
(`distributed.my_share`), each exactly the call one process would make (so the same outputs), committing each
result as it comes; then the processes exchange their results (`State.gather`), process 0 stores the others' in
its cache (when another machine's process made them), and all go on with every result."""

from __future__ import annotations

import time
from pathlib import Path

from crosstune.console import console
from crosstune.data.xinstruct.config import ModelConfig
from crosstune.distributed import my_share, share_line, state
from crosstune.errors import CrosstuneError
from crosstune.models.backends import GenerateRequest, LoglikRequest, LoglikResult, build_backend, parse_spec
from crosstune.models.cache import CachedBackend, CallCache, request_key
from crosstune.threads import set_threads


def fingerprint_for(spec: str) -> str:
    """HF specs: the weights hash of the resolved folder. `openai:MODEL@URL`: the weights hash when MODEL is a
    file on this machine (llama.cpp's server names models by their .gguf path), else `openai:MODEL`."""
    from crosstune.models.fingerprint import model_fingerprint

    cfg = parse_spec(spec)
    if cfg.get("kind") not in ("hf", "openai"):  # a user's backend (package.module:Object): set model.fingerprint
        return f"component:{cfg['kind']}"
    if cfg.get("kind") == "openai":
        model = cfg["model"]
        return model_fingerprint(model) if Path(model).is_file() else f"openai:{model}"
    from crosstune.models.loading import resolve_model

    return model_fingerprint(resolve_model(cfg["model"]))


def check_loglik_backend(spec: str, what: str) -> None:
    """Config-check time, before any call: log-likelihoods come from a local model here, not from a server."""
    if parse_spec(spec).get("kind") == "openai":
        raise CrosstuneError(
            f"{what}: backend {spec!r} is an OpenAI-compatible server, which this pipeline does not use to score "
            "log-likelihoods (llama.cpp's servers report wrong prompt log-probs: llama-cpp-python shifts them by "
            "one position, the native server returns none; docs/generation.md); expected a "
            "local model as model.judge (default, a HF folder or a .gguf), or refine.mode=generate")


class ModelHandle:
    """Built on first use, so a run whose every call is cached never loads a model or opens a connection."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.fingerprint = cfg.fingerprint if cfg.fingerprint != "auto" else fingerprint_for(cfg.backend)
        self.cache = CallCache(cfg.cache)
        self.cached = CachedBackend(_LazyBackend(cfg.backend, cfg.threads), self.cache,
                                    fingerprint=self.fingerprint, flush_every=1)  # calls take seconds: keep each
        self.seconds = 0.0  # wall time inside model calls (cache lookups included; tiny beside misses)
        self._tokenizer = None

    @property
    def calls(self) -> int:
        return self.cached.calls

    @property
    def hits(self) -> int:
        return self.cached.hits

    def request(self, prompt: str, max_new_tokens: int, temperature: float = 0.0, seed: int = 0,
                stop: list[str] | tuple[str, ...] = ()) -> GenerateRequest:
        content = [{"role": "user", "content": prompt}] if self.cfg.chat else prompt
        return GenerateRequest(prompt=content, max_new_tokens=max_new_tokens, stop=tuple(stop),
                               temperature=temperature, seed=seed)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        return self._timed(self.cached.generate, requests)

    def generate_groups(self, groups: list[list[GenerateRequest]], done=None, what: str = "") -> list[list[str]]:
        """`generate` on each group (one backend call each), split over the processes of a launch."""
        return self._groups(self.generate, "generate", groups, done, what)

    def loglikelihood_groups(self, groups: list[list[LoglikRequest]], done=None,
                             what: str = "") -> list[list[LoglikResult]]:
        return self._groups(self.loglikelihood, "loglikelihood", groups, done, what)

    def _keep(self, kind: str, pairs: list) -> None:
        """Store other processes' (request, result) pairs that this process's cache lacks, encoded as
        `CachedBackend` stores them."""
        encode = (lambda r: [r.logprob, r.is_greedy]) if kind == "loglikelihood" else (lambda t: t)
        fresh = {request_key(self.cached.fingerprint, kind, r): encode(a) for r, a in pairs}
        have = self.cache.get_many(fresh)
        self.cache.put_many({k: v for k, v in fresh.items() if k not in have}, kind)

    def _groups(self, call, kind: str, groups: list[list], done, what: str) -> list[list]:
        """Each group's results, in order; `done(i)` after group i. One process calls the groups in order.
        Several: the groups with a request the cache lacks are dealt every n-th; process 0 reads the others from
        the cache (so the processes' call and hit counts add up to the one-process counts)."""
        done = done or (lambda i: None)
        st = state()
        if st.world <= 1:
            out = []
            for i, g in enumerate(groups):
                out.append(call(g))
                done(i)
            return out
        pending = None
        if st.is_main:  # process 0's view of the cache: another process may already be writing this phase
            keys = [[request_key(self.cached.fingerprint, kind, r) for r in g] for g in groups]
            found = self.cache.get_many(k for ks in keys for k in ks)
            pending = [i for i, ks in enumerate(keys) if any(k not in found for k in ks)]
            if what and pending:
                console.print(f"{what}: {share_line(len(pending), 'calls', st)}")
        pending = st.gather(pending)[0]
        mine = my_share(pending, st)
        results = {}
        for i in mine:
            results[i] = call(groups[i])
            done(i)
        if st.is_main:  # the groups the cache answers whole: read once, sent with the rest
            results.update((i, call(groups[i])) for i in sorted(set(range(len(groups))) - set(pending)))
        for part in st.gather(results):
            results.update(part)
        if st.is_main:  # process 0's cache holds every result (each machine of a launch has its own cache)
            self._keep(kind, [(r, a) for i in sorted(set(pending) - set(mine)) for r, a in zip(groups[i], results[i])])
        for i in sorted(set(range(len(groups))) - set(mine)):
            done(i)
        return [results[i] for i in range(len(groups))]

    def _timed(self, call, requests):
        """Model time (cache lookups included) is what the manifest reports beside the pipeline's own."""
        t0 = time.perf_counter()
        try:
            return call(requests)
        finally:
            self.seconds += time.perf_counter() - t0

    # ---- log-likelihood (grading by scoring each grade word) ----------------------------------------------
    def loglik_requests(self, prompt: str, words: list[str] | tuple[str, ...]) -> list[LoglikRequest]:
        """Each word scored as the judge's answer to `prompt`: with `chat`, the prompt as one user message in the
        judge's `auto` template (what `generate` sends), else as is; token ids from the one renderer
        (models/prompting.py), a word after a space unless the prompt text already ends in whitespace."""
        from crosstune.models.prompting import Prompter

        if self._tokenizer is None:  # the tokenizer only: a fully cached run still loads no model
            from crosstune.models.loading import load_tokenizer

            self._tokenizer = load_tokenizer(parse_spec(self.cfg.backend)["model"])
        prompter = Prompter("auto" if self.cfg.chat else "raw").bind(tokenizer=self._tokenizer)
        messages = prompter.user(prompt)
        sep = "" if prompter.text(messages)[-1:].isspace() else " "
        return [LoglikRequest(*prompter.score(messages, sep + w)) for w in words]

    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        return self._timed(self.cached.loglikelihood, requests)


class _LazyBackend:
    """Builds the real backend on the first request that misses the cache."""

    def __init__(self, spec: str, threads: int = 1):
        self.spec, self.threads = spec, threads
        self.name = parse_spec(spec).get("kind", "hf")
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            if self.name == "hf":
                set_threads(self.threads)
            self._backend = build_backend(self.spec)
        return self._backend

    def generate(self, requests):
        return self.backend.generate(requests)

    def loglikelihood(self, requests):
        return self.backend.loglikelihood(requests)

    def generate_iter(self, requests):
        streaming = getattr(self.backend, "generate_iter", None)
        if streaming is not None:
            yield from streaming(requests)
        else:
            yield from enumerate(self.backend.generate(requests))
