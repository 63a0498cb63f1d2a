"""Hub ids offline: the local Hugging Face cache is used without network calls; an id that is not cached is one
clear `error:` line at once (not a minute of transformers' retries and a word about tokenizer files)."""

from __future__ import annotations

import shutil
import socket

import pytest

from crosstune.errors import CrosstuneError
from crosstune.models import hub
from crosstune.models.loading import load_tokenizer, resolve_model


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_an_uncached_hub_id_offline_is_one_clear_error(offline):
    with pytest.raises(CrosstuneError, match=r"model 'nobody-here/no-such-model': not found: .* not in the local "
                                             r"Hugging Face cache, and the machine is offline \(HF_HUB_OFFLINE"):
        resolve_model("nobody-here/no-such-model")


def test_a_cached_hub_id_offline_loads_from_the_cache(offline, tiny_model_dir):
    snapshot = offline / "models--someone--tiny" / "snapshots" / "abc123"
    shutil.copytree(tiny_model_dir, snapshot)
    (offline / "models--someone--tiny" / "refs").mkdir()
    (offline / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    assert resolve_model("someone/tiny") == str(snapshot)
    assert load_tokenizer("someone/tiny").eos_token == "<|im_end|>"


def test_no_network_counts_as_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with socket.socket() as closed:  # a port with nothing listening: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(CrosstuneError, match=r"offline \(no network: the Hub did not answer\)"):
        resolve_model("nobody-here/no-such-model")
    with socket.socket() as listening:  # something answers: online, the id goes to transformers as it is
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listening.getsockname()[1]}")
        assert resolve_model("nobody-here/no-such-model") == "nobody-here/no-such-model"


def test_the_cli_says_it_in_one_line(offline, capsys):
    from tests.conftest import run_main

    code, cap = run_main(["models", "prepare", "nobody-here/no-such-model"], capsys)
    assert code == 2 and cap.err.count("\n") == 1 and "the machine is offline" in cap.err
    assert "Traceback" not in cap.err
