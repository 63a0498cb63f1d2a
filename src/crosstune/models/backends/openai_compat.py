"""An OpenAI-compatible HTTP server (vLLM, llama.cpp server, TGI, OpenAI) as a backend.

Generation uses chat completions for message lists and completions for plain prompts. Log-likelihood uses
completions with `echo=True, logprobs=1, max_tokens=0`, which vLLM-style servers support; others raise a clear error.
The API key comes from an environment variable only (default OPENAI_API_KEY) and is never logged.
"""

from __future__ import annotations

import os

from crosstune.errors import CrosstuneError
from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult, truncate_at_stop


class OpenAICompatBackend:
    name = "openai"

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY", batch_size: int = 8,
                 timeout: float = 120.0, max_retries: int = 2):
        from openai import OpenAI

        self.model = model
        self.batch_size = batch_size  # kept for a uniform interface; requests are sent one by one
        key = os.environ.get(api_key_env) or "EMPTY"  # local servers accept any key
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        return [self._generate_one(r) for r in requests]

    def _generate_one(self, r: GenerateRequest) -> str:
        common = dict(model=self.model, max_tokens=r.max_new_tokens, temperature=r.temperature, seed=r.seed,
                      stop=list(r.stop) or None)
        try:
            if isinstance(r.prompt, str):
                text = self.client.completions.create(prompt=r.prompt, **common).choices[0].text
            else:
                text = self.client.chat.completions.create(messages=r.prompt, **common).choices[0].message.content
        except Exception as e:  # the openai client raises many types; report them all the same way
            raise CrosstuneError(f"openai backend {self.model}: request failed ({type(e).__name__}: {e})") from None
        return truncate_at_stop(text or "", tuple(r.stop))

    def loglikelihood(self, requests: list[LoglikRequest]) -> list[LoglikResult]:
        return [self._loglik_one(r) for r in requests]

    def _loglik_one(self, r: LoglikRequest) -> LoglikResult:
        try:
            out = self.client.completions.create(model=self.model, prompt=r.context + r.continuation, echo=True,
                                                 logprobs=1, max_tokens=0, temperature=0.0)
            lp = out.choices[0].logprobs
            offsets, token_lps, top = lp.text_offset, lp.token_logprobs, lp.top_logprobs
        except Exception as e:
            raise CrosstuneError(f"openai backend {self.model}: this server cannot score log-likelihoods "
                                 f"(completions with echo and logprobs failed: {type(e).__name__}: {e})") from None
        start = len(r.context)
        picked = [i for i, off in enumerate(offsets) if off >= start]
        if not picked:
            raise CrosstuneError(f"openai backend {self.model}: no tokens returned for the continuation")
        total = sum(token_lps[i] for i in picked)
        greedy = all(top and top[i] and max(top[i].values()) <= token_lps[i] + 1e-6 for i in picked)
        return LoglikResult(float(total), bool(greedy))
