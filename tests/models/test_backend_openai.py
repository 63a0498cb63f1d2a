"""The OpenAI-compatible backend against a real HTTP server on the loopback interface (a tiny fake of the API)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from crosstune.errors import CrosstuneError
from crosstune.models.backends import build_backend
from crosstune.models.backends.base import GenerateRequest, LoglikRequest


class FakeAPI(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeAPI.seen.append((self.path, body, self.headers.get("Authorization")))
        if self.path.endswith("/chat/completions"):
            msg = body["messages"][-1]["content"]
            out = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {msg}. The end"},
                                "finish_reason": "stop"}]}
        elif body.get("echo"):
            text = body["prompt"]  # one "token" per character, log-prob -0.5 each, always the top choice
            out = {"choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": {
                "tokens": list(text), "token_logprobs": [-0.5] * len(text), "text_offset": list(range(len(text))),
                "top_logprobs": [{c: -0.5} for c in text]}}]}
        else:
            out = {"choices": [{"index": 0, "text": " completion", "finish_reason": "stop"}]}
        data = json.dumps({"id": "x", "object": "x", "created": 0, "model": body["model"], **out}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = HTTPServer(("127.0.0.1", 0), FakeAPI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_generate_and_loglik_over_http(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    be = build_backend({"kind": "openai", "model": "m", "base_url": server, "api_key_env": "MY_KEY"})
    out = be.generate([GenerateRequest([{"role": "user", "content": "hi"}], 16, stop=(".",)),
                       GenerateRequest("plain", 8)])
    assert out == ["echo: hi", " completion"]
    res = be.loglikelihood([LoglikRequest("Answer:", " B")])
    assert res[0].logprob == pytest.approx(-1.0) and res[0].is_greedy
    assert FakeAPI.seen[0][2] == "Bearer sk-test-123"  # the key goes to the server, from the environment


def test_string_spec_and_server_errors(server):
    be = build_backend(f"openai:m@{server}")
    assert be.model == "m"
    bad = build_backend({"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_retries": 0,
                         "timeout": 2})
    with pytest.raises(CrosstuneError, match="request failed"):
        bad.generate([GenerateRequest("x", 4)])
