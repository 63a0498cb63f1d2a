"""The OpenAI-compatible backend against the real llama.cpp server (`llama_cpp.server` on 127.0.0.1 serving the
default model's GGUF): chat and plain generation, concurrency with results in input order, a server killed mid-run
(finished results stay in the cache, a clear error), and resume against a restarted server with the calls counted."""

from __future__ import annotations

import threading
import time

import pytest

from crosstune.errors import CrosstuneError
from crosstune.models.backends import build_backend
from crosstune.models.backends.base import GenerateRequest
from crosstune.models.cache import CachedBackend, CallCache
from tests.llama_server import start_llama_server

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?", "Say hello in Spanish.",
             "What do bees make?", "Name a planet.", "What colour is the sky?", "Name a fruit."]


def chat(q: str, n: int = 8) -> GenerateRequest:
    return GenerateRequest([{"role": "user", "content": q}], max_new_tokens=n)


def test_chat_and_plain_generation(llama_server):
    be = build_backend(llama_server.spec)
    out = be.generate([chat("What is the capital of France? Answer in one word.", 12),
                       GenerateRequest("The capital of France is", max_new_tokens=6)])
    assert all(isinstance(t, str) and t.strip() for t in out)
    assert "Paris" in out[0] + out[1]
    assert be.generate([chat("What is the capital of France? Answer in one word.", 12)]) == out[:1]  # greedy
    assert be.fingerprint == f"openai:{llama_server.model}@{llama_server.base_url}|served={llama_server.model}"
    assert be.tokens_generated > 0
    stopped = be.generate([GenerateRequest("1, 2, 3, 4, 5, 6,", max_new_tokens=12, stop=(" 8",))])[0]
    assert " 8" not in stopped


def test_loglikelihood_counts_only_the_continuation(llama_server):
    """Chain rule: log p(a b | c) = log p(a | c) + log p(b | c a), with the boundaries at spaces so the tokens are the
    same. Tokens the server generates after the text (llama.cpp reads max_tokens=0 as "no limit", each adding about
    -10) would break it; the tolerance covers the quantised model's batch-size numerics. (The values themselves are
    what llama-cpp-python reports: its echoed prompt log-probs are shifted by one position, abetlen/llama-cpp-python
    #1983, so docs/generation.md recommends vLLM or a local model for log-likelihood tasks.)"""
    from crosstune.models.backends.base import LoglikRequest

    be = build_backend(llama_server.spec)
    c, a, b = "The capital of France is", " Paris, and the capital of Spain", " is Madrid."
    whole, first, second = be.loglikelihood([LoglikRequest(c, a + b), LoglikRequest(c, a), LoglikRequest(c + a, b)])
    assert whole.logprob < 0 and first.logprob < 0 and second.logprob < 0
    assert whole.logprob == pytest.approx(first.logprob + second.logprob, abs=0.5)


def test_concurrent_requests_come_back_in_input_order(llama_server):
    reqs = [chat(q) for q in QUESTIONS]
    one_by_one = build_backend(llama_server.spec, concurrency=1).generate(reqs)
    be = build_backend(llama_server.spec, concurrency=4)
    assert be.generate(reqs) == one_by_one
    got = dict(be.generate_iter(reqs))
    assert [got[i] for i in range(len(reqs))] == one_by_one


def test_server_killed_mid_run_keeps_results_and_resumes_without_repeats(tmp_path):
    server = start_llama_server(tmp_path / "srv")
    try:
        cache = CallCache(tmp_path / "calls.sqlite")
        reqs = [chat(f"{q} ({i})", 10) for i, q in enumerate(QUESTIONS * 2)]
        first = CachedBackend(build_backend(server.spec, concurrency=2, max_retries=2, backoff=0.05, timeout=20),
                              cache, flush_every=1)

        def kill_after_some() -> None:
            deadline = time.monotonic() + 120
            while len(cache) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            server.stop(kill=True)  # SIGKILL: the server dies with requests in flight

        killer = threading.Thread(target=kill_after_some)
        killer.start()
        with pytest.raises(CrosstuneError, match=rf"request \d+ to {server.base_url} \(model {server.model}\) "
                                                 r"failed after 3 attempts: connection failed.*rerun to resume"):
            first.generate(reqs)
        killer.join()
        stored = len(cache)
        assert 4 <= stored < len(reqs) and first.calls == stored

        server.start()  # the same port: the same fingerprint, so the cache applies
        posts_before = server.log_tail(10_000).count("POST /v1/chat/completions")
        resumed = CachedBackend(build_backend(server.spec, concurrency=2), cache, flush_every=1)
        out = resumed.generate(reqs)
        posts = server.log_tail(10_000).count("POST /v1/chat/completions") - posts_before
        assert resumed.hits == stored and resumed.calls == len(reqs) - stored == posts  # nothing asked twice
        assert all(isinstance(t, str) for t in out)
        rerun = CachedBackend(build_backend(server.spec, concurrency=2), cache)
        assert rerun.generate(reqs) == out and rerun.calls == 0
    finally:
        server.stop()
