"""The call cache: misses reach the backend once, hits never do, partial results survive an exception."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from crosstune.models.backends.base import GenerateRequest, LoglikRequest, LoglikResult
from crosstune.models.cache import CachedBackend, CallCache, request_key


class Counting:
    name = "counting"
    fingerprint = "fp-1"

    def __init__(self, fail_after: int | None = None):
        self.seen: list = []
        self.fail_after = fail_after

    def generate(self, requests):
        return [r for _, r in self.generate_iter(requests)]

    def generate_iter(self, requests):
        for i, r in enumerate(requests):
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise ConnectionError("server died")
            self.seen.append(r)
            yield i, f"out:{r.prompt}:{r.temperature}"

    def loglikelihood(self, requests):
        self.seen += requests
        return [LoglikResult(-float(len(r.continuation)), True) for r in requests]


def test_rerun_makes_no_calls_and_settings_change_the_key(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    reqs = [GenerateRequest(prompt=p) for p in ["a", "b", "a"]]
    b1 = CachedBackend(Counting(), cache)
    assert b1.generate(reqs) == ["out:a:0.0", "out:b:0.0", "out:a:0.0"]
    assert b1.calls == 2 and len(b1.backend.seen) == 2  # duplicates are sent once
    b2 = CachedBackend(Counting(), cache)
    assert b2.generate(reqs) == ["out:a:0.0", "out:b:0.0", "out:a:0.0"] and b2.calls == 0 and b2.hits == 3
    b3 = CachedBackend(Counting(), cache)
    assert b3.generate([GenerateRequest(prompt="a", temperature=0.7)]) == ["out:a:0.7"] and b3.calls == 1
    other = Counting()
    other.fingerprint = "fp-2"
    assert CachedBackend(other, cache).generate([GenerateRequest(prompt="a")]) and other.seen  # another model


def test_loglik_round_trip(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    reqs = [LoglikRequest("ctx", " yes"), LoglikRequest("ctx", " no!")]
    first = CachedBackend(Counting(), cache).loglikelihood(reqs)
    again = CachedBackend(Counting(), cache)
    assert again.loglikelihood(reqs) == first and again.calls == 0


def test_results_before_a_failure_are_kept(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    reqs = [GenerateRequest(prompt=str(i)) for i in range(10)]
    dying = CachedBackend(Counting(fail_after=6), cache, flush_every=4)
    with pytest.raises(ConnectionError):
        dying.generate(reqs)
    resumed = CachedBackend(Counting(), cache)
    assert resumed.generate(reqs) == [f"out:{i}:0.0" for i in range(10)]
    assert resumed.calls == 4  # only the four that never came back


def _writer(path: str, start: int) -> None:
    cache = CallCache(path)
    for i in range(start, start + 200):
        cache.put_many({f"k{i}": i})


def test_concurrent_writers(tmp_path):
    path = str(tmp_path / "c.sqlite")
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, s)) for s in (0, 200, 400, 600)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(CallCache(path)) == 800


def test_key_is_stable():
    r = GenerateRequest(prompt=[{"role": "user", "content": "x"}], max_new_tokens=5)
    assert request_key("m", "generate", r) == request_key("m", "generate", GenerateRequest(
        prompt=[{"role": "user", "content": "x"}], max_new_tokens=5))
