"""The OpenAI-compatible backend against a hostile server on 127.0.0.1 (http.server in a thread): a reply trickled a
byte at a time meets a total deadline, a 10 MB reply is refused and not stored, a 401 that echoes the auth header
never shows the key, and a process killed after 6 answers has all 6 in the call cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crosstune.errors import CrosstuneError
from crosstune.models.backends.base import GenerateRequest
from crosstune.models.backends.openai_compat import OpenAICompatBackend
from crosstune.models.cache import CachedBackend, CallCache

CANARY = "sk-canary-7f3a9c1e55"


def _completion(text: str) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}]}).encode()


class Hostile(BaseHTTPRequestHandler):
    trickled = 0  # bytes of the trickled reply that were sent before the client left
    answered = 0
    received = 0
    release = threading.Event()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        Hostile.received += 1
        if prompt == "trickle":  # valid headers, then one byte every 0.2 s of a 2,000-byte body (400 s)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2000")
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    Hostile.trickled += 1
                    time.sleep(0.2)
            except OSError:
                pass
            return
        if prompt == "huge":
            return self._send(200, _completion("x" * (10 << 20)))
        if prompt == "echo401":  # a server that repeats what it was sent, auth header included
            auth = self.headers.get("Authorization")
            return self._send(401, json.dumps({"error": {"message": f"Incorrect API key provided: {auth} "
                                                                   f"(key {auth.split()[-1]})"}}).encode())
        if prompt.startswith("hang") and Hostile.answered >= 6:
            Hostile.release.wait(120)
        Hostile.answered += 1
        return self._send(200, _completion(f"answer to {prompt}"))

    def _send(self, code: int, data: bytes):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass


@pytest.fixture
def server():
    Hostile.trickled = Hostile.answered = Hostile.received = 0
    Hostile.release.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    Hostile.release.set()
    httpd.shutdown()
    httpd.server_close()


def _backend(url: str, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend("m", url, max_retries=0, concurrency=1, **kw)


def _ask(backend, prompt: str):
    return backend.generate([GenerateRequest(prompt=[{"role": "user", "content": prompt}], max_new_tokens=4)])


def test_trickled_reply_meets_the_total_deadline(server):
    with pytest.raises(CrosstuneError, match=r"failed after 1 attempts: the reply took longer than 1.5 s"):
        _ask(_backend(server, timeout=1.5), "trickle")
    assert Hostile.trickled < 100  # cut off early: the whole trickle is 2,000 bytes (400 s)


def test_huge_reply_refused_and_not_cached(server, tmp_path):
    cache = CallCache(tmp_path / "calls.sqlite")
    with pytest.raises(CrosstuneError, match=r"the reply is larger than 4,194,304 bytes; not stored"):
        CachedBackend(_backend(server), cache).generate(
            [GenerateRequest(prompt=[{"role": "user", "content": "huge"}], max_new_tokens=4)])
    assert len(cache) == 0
    # the cap is a setting; a reply under it is kept
    url = server + "?max_reply_bytes=20000000"
    assert _ask(_backend(url), "huge")[0] == "x" * (10 << 20)


def test_401_echoing_the_key_is_redacted(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    with pytest.raises(CrosstuneError) as e:
        _ask(_backend(server), "echo401")
    msg = str(e.value)
    assert "HTTP 401" in msg and "Bearer ***" in msg and "(key ***)" in msg
    assert CANARY not in msg and CANARY[3:12] not in msg


KILLED = """
import sys
from crosstune.models.backends.base import GenerateRequest
from crosstune.models.backends.openai_compat import OpenAICompatBackend
from crosstune.models.cache import CachedBackend, CallCache
backend = CachedBackend(OpenAICompatBackend("m", sys.argv[1], concurrency=1), CallCache(sys.argv[2]))
backend.generate([GenerateRequest(prompt=[{"role": "user", "content": f"hang {i}"}], max_new_tokens=4)
                  for i in range(20)])
"""


def test_killed_after_six_answers_keeps_six(server, tmp_path):
    """A real process with the default CachedBackend settings (what judges and the LLM translation engine use),
    SIGKILLed while its 7th request hangs: the 6 answers are in the cache, and a rerun asks only for the rest."""
    db = tmp_path / "calls.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, server, str(db)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while Hostile.received < 7 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the 7th request reaching the server means the 6th answer was handled
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    cache = CallCache(db)
    assert len(cache) == 6
    Hostile.release.set()
    Hostile.answered = 0
    again = CachedBackend(OpenAICompatBackend("m", server, concurrency=1), cache)
    out = again.generate([GenerateRequest(prompt=[{"role": "user", "content": f"hang {i}"}], max_new_tokens=4)
                          for i in range(20)])
    assert out == [f"answer to hang {i}" for i in range(20)]
    assert again.hits == 6 and again.calls == 14
