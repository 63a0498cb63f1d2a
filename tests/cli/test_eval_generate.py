"""`crosstune eval generate` end to end: the interface later checks rely on, user errors (exit 2, file and line),
and a real `crosstune` subprocess SIGKILLed mid-run against the real llama.cpp server, then resumed with the
backend calls counted before and after (no call made twice)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from crosstune.eval.generation import read_generations
from tests.conftest import REPO, run_main


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    en = write_jsonl(tmp_path / "en.jsonl", [{"id": str(i), "prompt": f"Question {i}: what is {i} + {i}?"}
                                             for i in range(3)])
    zh = write_jsonl(tmp_path / "zh.jsonl", [{"id": str(i), "prompt": f"问题{i}：{i}加{i}等于几？"} for i in range(3)])
    return en, zh


def test_generate_cli_runs_and_reruns_from_the_cache(tmp_path, files, tiny_model_dir, capsys):
    en, zh = files
    args = ["eval", "generate", "--model", str(tiny_model_dir), "--prompts", f"en={en}", f"zh={zh}",
            "--directive", "tag", "--target-language", "en", "--limit", "2", "--max-new-tokens", "4",
            "--cache", str(tmp_path / "c.sqlite"), "--threads", "1"]
    code, out = run_main(args + ["--out", str(tmp_path / "a")], capsys)
    assert code == 0, out.err
    assert "4 rows (4 prompts x 1 samples)" in out.out and "4 calls, 0 cache hits" in out.out
    rows = read_generations(tmp_path / "a")
    assert [(r["language"], r["expected_language"], r["directive"]) for r in rows] == [("en", "en", "tag")] * 2 + \
        [("zh", "en", "tag")] * 2
    assert rows[2]["prompt"].endswith("\n[en]")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert summary["calls"] == 4 and run["decoding"]["max_new_tokens"] == 4 and run["limit"] == 2
    code, out = run_main(args + ["--out", str(tmp_path / "b")], capsys)  # repeatable --prompts form too
    assert code == 0 and "0 calls, 4 cache hits" in out.out


@pytest.mark.parametrize("extra, message", [
    (["--directive", "shout"], "--directive 'shout': expected one of none, tag, answer_in"),
    (["--target-language", "fr"], "--target-language needs --directive tag or answer_in"),
    (["--decoding", "beam"], "--decoding 'beam': expected one of greedy, xinstruct, lcb"),
])
def test_bad_options_exit_2(tmp_path, files, tiny_model_dir, capsys, extra, message):
    en, _ = files
    code, out = run_main(["eval", "generate", "--model", str(tiny_model_dir), "--prompts", f"en={en}",
                          "--out", str(tmp_path / "o"), *extra], capsys)
    assert code == 2 and message in out.err and "Traceback" not in out.err


def test_prompts_without_a_language_exit_2_naming_the_line(tmp_path, tiny_model_dir, capsys):
    p = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "hi", "language": "en"}, {"prompt": "no language here"}])
    code, out = run_main(["eval", "generate", "--model", str(tiny_model_dir), "--prompts", str(p),
                          "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"error: {p}:2: no language for this prompt" in out.err
    assert not (tmp_path / "o").exists()  # bad input fails before any model call or output


def _cached_results(path) -> int:
    try:
        with sqlite3.connect(path, timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


def _server_calls(server) -> int:
    return server.log_path.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')


def test_sigkill_mid_run_then_resume_makes_no_repeated_calls(tmp_path, llama_server):
    n = 24
    prompts = write_jsonl(tmp_path / "en.jsonl", [{"id": str(i), "prompt": f"Name a colour. ({i})"} for i in range(n)])
    cache = tmp_path / "calls.sqlite"
    cmd = [sys.executable, "-m", "crosstune", "eval", "generate", "--model", llama_server.spec,
           "--prompts", f"en={prompts}", "--max-new-tokens", "12", "--concurrency", "1",
           "--cache", str(cache), "--out", str(tmp_path / "run")]
    env = {**os.environ, "CROSSTUNE_CACHE": str(tmp_path / "cache")}
    server_before = _server_calls(llama_server)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _cached_results(cache) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stored = _cached_results(cache)
    out_file = tmp_path / "run" / "generations.jsonl"
    rows_before = len(read_generations(out_file)) if out_file.exists() and out_file.stat().st_size else 0
    assert 5 <= stored < n and proc.returncode == -signal.SIGKILL
    calls_first = _server_calls(llama_server) - server_before
    assert stored <= calls_first <= stored + 1  # at most the one request in flight at the kill was lost

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    calls_second = _server_calls(llama_server) - server_before - calls_first
    assert summary["calls"] == n - stored == calls_second  # only what never came back is asked again
    assert summary["rows_resumed"] == rows_before and summary["cache_hits"] == stored - rows_before
    rows = read_generations(tmp_path / "run")
    assert [r["id"] for r in rows] == [str(i) for i in range(n)]
    print(f"\nkilled after {stored} stored results ({calls_first} server calls, {rows_before} rows written); "
          f"resume made {summary['calls']} calls, {summary['cache_hits']} cache hits, "
          f"{summary['rows_resumed']} rows resumed; total server calls {calls_first + calls_second} for {n} prompts")
