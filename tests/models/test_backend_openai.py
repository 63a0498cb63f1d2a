"""The OpenAI-compatible backend against a scripted HTTP server on the loopback interface: the request format,
retries with backoff on 429/5xx, garbage answers, bounded concurrency with results in input order, partial results
kept when requests fail for good, and the API key never leaving the Authorization header. (The same backend
against the real llama.cpp server: tests/models/test_llama_server.py.)"""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crosstune.errors import CrosstuneError
from crosstune.models.backends import build_backend
from crosstune.models.backends.base import GenerateRequest, LoglikRequest
from crosstune.models.backends.openai_compat import split_url_settings
from crosstune.models.cache import CachedBackend, CallCache

KEY = "sk-test-very-secret-123"


class FakeAPI(BaseHTTPRequestHandler):
    """Answers like an OpenAI server; a prompt can script the answer: 'fail:N:CODE' fails N times with CODE,
    'garbage' returns non-JSON, 'sleep:S' waits S seconds, 'down' always fails with 503."""

    seen: list = []
    failures: dict = {}
    lock = threading.Lock()
    in_flight = 0
    max_in_flight = 0

    def do_GET(self):
        self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with FakeAPI.lock:
            FakeAPI.seen.append((self.path, body, self.headers.get("Authorization")))
            FakeAPI.in_flight += 1
            FakeAPI.max_in_flight = max(FakeAPI.max_in_flight, FakeAPI.in_flight)
        try:
            self._answer(body)
        finally:
            with FakeAPI.lock:
                FakeAPI.in_flight -= 1

    def _answer(self, body):
        text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        if text.startswith("fail:"):
            _, n, code = text.split(":")
            with FakeAPI.lock:
                done = FakeAPI.failures.get(text, 0)
                FakeAPI.failures[text] = done + 1
            if done < int(n):
                return self._send(int(code), {"error": {"message": "busy"}}, {"Retry-After": "0"})
        if text == "down":
            return self._send(503, {"error": {"message": "overloaded"}})
        if text == "garbage":
            data = b"<html>not json</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":")[1]))
        if "messages" in body:
            out = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {text}. The end"},
                                "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5,
                                                                     "total_tokens": 8}}
        elif body.get("echo"):
            out = {"choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": {
                "tokens": list(text), "token_logprobs": [-0.5] * len(text), "text_offset": list(range(len(text))),
                "top_logprobs": [{c: -0.5} for c in text]}}]}
        else:
            out = {"choices": [{"index": 0, "text": f" completion of {text}", "finish_reason": "stop"}]}
        self._send(200, {"id": "x", "object": "x", "created": 0, "model": body["model"], **out})

    def _send(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def backend(server, **kw):
    return build_backend({"kind": "openai", "model": "m", "base_url": server, "backoff": 0.01, **kw})


def test_generate_and_loglik_over_http(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    be = backend(server, api_key_env="MY_KEY")
    out = be.generate([GenerateRequest([{"role": "user", "content": "hi"}], 16, stop=(".",)),
                       GenerateRequest("plain", 8)])
    assert out == ["echo: hi", " completion of plain"]
    res = be.loglikelihood([LoglikRequest("Answer:", " B")])
    assert res[0].logprob == pytest.approx(-1.0) and res[0].is_greedy
    assert all(auth == f"Bearer {KEY}" for _, _, auth in FakeAPI.seen)  # the key goes to the server, from the env
    assert be.tokens_generated == 5


def test_sampling_settings_reach_the_server(server):
    FakeAPI.seen.clear()
    backend(server).generate([GenerateRequest("p", 7, temperature=0.7, top_p=0.9, seed=3), GenerateRequest("g", 5)])
    sampled, greedy = sorted((b for _, b, _ in FakeAPI.seen), key=lambda b: b["prompt"], reverse=True)
    assert (sampled["temperature"], sampled["top_p"], sampled["seed"], sampled["max_tokens"]) == (0.7, 0.9, 3, 7)
    assert greedy["temperature"] == 0.0 and "top_p" not in greedy


def test_transient_errors_are_retried_with_backoff(server):
    be = backend(server, max_retries=3)
    out = be.generate([GenerateRequest("fail:2:429"), GenerateRequest("fail:1:500"), GenerateRequest("ok")])
    assert out == [" completion of fail:2:429", " completion of fail:1:500", " completion of ok"]
    assert be.retries == 3


def test_a_request_that_keeps_failing_names_itself_and_the_server(server):
    be = backend(server, max_retries=2, concurrency=1)
    with pytest.raises(CrosstuneError, match=r"request 1 to http://127\.0\.0\.1:\d+/v1 \(model m\) failed after 3 "
                                             r"attempts: HTTP 503"):
        be.generate([GenerateRequest("a"), GenerateRequest("down"), GenerateRequest("b")])


def test_garbage_and_client_errors_are_not_retried(server):
    be = backend(server, max_retries=3)
    with pytest.raises(CrosstuneError, match="request 0 .*not a completion"):
        be.generate([GenerateRequest("garbage")])
    with pytest.raises(CrosstuneError, match="request 0 .*HTTP 400"):
        be.generate([GenerateRequest("fail:9:400")])
    assert be.retries == 0


def test_server_down_is_a_clear_error():
    bad = build_backend({"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_retries": 1,
                         "backoff": 0.01, "timeout": 2})
    with pytest.raises(CrosstuneError, match=r"request 0 to http://127\.0\.0\.1:9/v1 .*connection failed"):
        bad.generate([GenerateRequest("x", 4)])
    assert bad.fingerprint == "openai:m@http://127.0.0.1:9/v1|served=?"


def test_concurrency_is_bounded_and_results_keep_input_order(server):
    FakeAPI.max_in_flight = 0
    be = backend(server + "?concurrency=3")
    assert be.concurrency == 3 and be.base_url == server
    reqs = [GenerateRequest(f"sleep:{0.05 * (i % 4)}:{i}") for i in range(12)]
    t = time.perf_counter()
    out = be.generate(reqs)
    assert out == [f" completion of sleep:{0.05 * (i % 4)}:{i}" for i in range(12)]
    assert FakeAPI.max_in_flight == 3
    order = [i for i, _ in backend(server, concurrency=4).generate_iter(reqs)]
    assert sorted(order) == list(range(12))  # every result once, as they complete
    assert time.perf_counter() - t > 0  # (speed-up itself is measured in benchmarks/bench_http.py)


def test_completed_results_are_kept_when_requests_fail(server, tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    reqs = [GenerateRequest(f"ok{i}") for i in range(5)] + [GenerateRequest("down")] + \
           [GenerateRequest(f"late{i}") for i in range(4)]
    first = CachedBackend(backend(server, concurrency=2, max_retries=1), cache, flush_every=1)
    with pytest.raises(CrosstuneError, match="request 5"):
        first.generate(reqs)
    assert first.calls >= 5  # everything before the failing request (and what was in flight) is stored
    again = CachedBackend(backend(server, concurrency=2), cache)
    with pytest.raises(CrosstuneError):
        again.generate(reqs)
    assert again.hits == first.calls  # nothing that came back is asked again


def test_the_key_is_never_logged_or_shown(server, monkeypatch, caplog, capsys, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    be = backend(server, max_retries=1)
    be.generate([GenerateRequest("fine")])
    with pytest.raises(CrosstuneError) as e:
        be.generate([GenerateRequest("down")])
    cache = CallCache(tmp_path / "c.sqlite")
    CachedBackend(be, cache).generate([GenerateRequest("cached")])
    shown = " ".join([str(e.value), repr(be), be.fingerprint, caplog.text, *capsys.readouterr(),
                      (tmp_path / "c.sqlite").read_bytes().decode("latin-1")])
    assert KEY not in shown


def test_url_settings_and_string_spec(server):
    assert split_url_settings("http://h:1/v1?concurrency=8&timeout=5&x=1") == ("http://h:1/v1?x=1",
                                                                              {"concurrency": 8, "timeout": 5.0})
    be = build_backend(f"openai:m@{server}")
    assert be.model == "m" and be.concurrency == 4
    assert be.fingerprint == f"openai:m@{server}|served=m"
    with pytest.raises(CrosstuneError, match="concurrency"):
        build_backend({"kind": "openai", "model": "m", "base_url": server, "concurrency": 0})
