"""`eval generate` and `eval judge` on 2 real CPU processes (torchrun, gloo) against 1 process: the same files; more
processes than prompts; one process of a 2-process run killed, and the rerun resumes without repeating a call."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosstune.distributed import State, my_share, part_files, part_path, share_line
from tests.conftest import REPO, run_main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(commands: list[list[str]], **popen):
    """torchrun with 2 processes running `commands` one after another (tests/eval/cli_sequence.py)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_port()),
           str(Path(__file__).with_name("cli_sequence.py")), json.dumps(commands)]
    return subprocess.Popen(cmd, env=ENV, text=True, **popen)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_share_split_and_part_names(tmp_path):
    states = [State(r, 3) for r in range(3)]
    shares = [my_share(list(range(8)), s) for s in states]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5]]  # every n-th, all items once
    assert share_line(8, "prompts", states[0]) == "3 processes: 3 or 2 prompts each"
    assert share_line(2, "pairs", states[0]) == "3 processes for 2 pairs: 1 idle (more processes than pairs; they " \
        "wait for the others)"
    assert share_line(5, "prompts", State()) == ""
    assert part_path(tmp_path / "generations.jsonl", 1).name == "generations.part1.jsonl"
    for r in (10, 2):
        part_path(tmp_path / "generations.jsonl", r).write_text("")
    assert [p.name for p in part_files(tmp_path / "generations.jsonl")] == ["generations.part2.jsonl",
                                                                          "generations.part10.jsonl"]


def test_concurrency_zero_is_an_error_line(tmp_path, capsys):
    for argv in (["eval", "generate", "--model", "openai:m@http://127.0.0.1:9/v1", "--prompts", "x.jsonl"],
                 ["eval", "judge", "--judge", "openai:m@http://127.0.0.1:9/v1", "--a", "a", "--b", "b",
                  "--protocol", "pinch"]):
        code, cap = run_main([*argv, "--concurrency", "0", "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and cap.err.strip().splitlines()[-1].startswith("error: --concurrency 0: expected 1 or more")


@pytest.mark.integration
def test_generate_and_judge_two_processes_equal_one(tiny_model_dir, tmp_path, capsys):
    en = _write(tmp_path / "en.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(
        ["What is the capital of France?", "Say hi.", "2+2?", "Name a color.", "Count to three.", "Why?"])])
    zh = _write(tmp_path / "zh.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(
        ["法国的首都是哪里？", "打个招呼。", "二加二？", "说一个颜色。", "数到三。"])])
    one = _write(tmp_path / "one.jsonl", [{"id": "solo", "prompt": "Only one prompt."}])
    gen = ["eval", "generate", "--model", str(tiny_model_dir), "--prompts", f"en={en}", f"zh={zh}",
           "--max-new-tokens", "6", "--batch-size", "4", "--threads", "1"]
    judge = ["eval", "judge", "--judge", str(tiny_model_dir), "--b", str(tmp_path / "b1"), "--protocol", "pinch",
             "--gate", "off", "--n-boot", "50", "--max-new-tokens", "4"]
    c1, c2 = str(tmp_path / "one.sqlite"), str(tmp_path / "two.sqlite")  # separate caches: both runs compute
    for argv in ([*gen, "--cache", c1, "--out", str(tmp_path / "g1")],
                 [*gen, "--directive", "answer_in", "--cache", c1, "--out", str(tmp_path / "b1")],
                 [*judge, "--a", str(tmp_path / "g1"), "--cache", c1, "--out", str(tmp_path / "j1")]):
        assert run_main(argv, capsys)[0] == 0
    p = _launch([[*gen, "--cache", c2, "--out", str(tmp_path / "g2")],
                 [*judge, "--a", str(tmp_path / "g2"), "--cache", c2, "--out", str(tmp_path / "j2")],
                 [*gen[:4], "--prompts", f"en={one}", *gen[7:], "--cache", c2, "--out", str(tmp_path / "idle")]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    assert "2 processes: 6 or 5 prompts each" in err and "judge: 2 processes: 6 or 5 pairs each" in err
    assert "2 processes for 1 prompts: 1 idle (more processes than prompts" in err
    assert "generate (process 1)" in err and "generate (process 0)" in err
    assert out.count("11 rows (11 prompts x 1 samples)") == 1  # process 0 reports for both
    for name in ("generations.jsonl", "run.json"):
        assert (tmp_path / "g2" / name).read_bytes() == (tmp_path / "g1" / name).read_bytes()
    s1, s2 = (json.loads((tmp_path / g / "summary.json").read_text()) for g in ("g1", "g2"))
    assert s2["calls"] == s1["calls"] and s2["processes"] == 2 and s2["rows_resumed"] == 0
    assert (tmp_path / "j2" / "items.jsonl").read_bytes() == (tmp_path / "j1" / "items.jsonl").read_bytes()
    j1, j2 = (json.loads((tmp_path / j / "summary.json").read_text()) for j in ("j1", "j2"))
    assert {**j2, "a": None} == {**j1, "a": None} and j2["calls"] == j1["calls"] > 0  # calls summed
    assert len((tmp_path / "idle" / "generations.jsonl").read_text().splitlines()) == 1
    assert not list(tmp_path.glob("*/*.part*"))


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"RANK=")), None)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker to kill through /proc")
def test_killed_process_of_two_resumes_without_repeating_calls(tiny_model_dir, tmp_path, capsys):
    prompts = _write(tmp_path / "p.jsonl", [{"id": f"k{i}", "prompt": f"Question {i}: what is {i} plus {i % 7}?"}
                                            for i in range(120)])
    gen = ["eval", "generate", "--model", str(tiny_model_dir), "--prompts", f"en={prompts}", "--max-new-tokens",
           "16", "--batch-size", "2", "--threads", "1"]  # rows are written per chunk of 32: 2 chunks per process
    run, cache = tmp_path / "run", str(tmp_path / "two.sqlite")
    p = _launch([[*gen, "--cache", cache, "--out", str(run)]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    victim, deadline = None, time.time() + 300
    while victim is None and time.time() < deadline and p.poll() is None:
        if _lines(part_path(run / "generations.jsonl", 1)):  # process 1 wrote its first chunk: kill it now
            workers = _children(p.pid)
            workers += [c for w in workers for c in _children(w)]
            victim = next((w for w in workers if _rank_of(w) == 1), None)
            if victim:
                os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    _, err = p.communicate(timeout=300)
    assert victim is not None and p.returncode != 0, f"process 1 was not killed mid-run: {err[-2000:]}"
    assert not (run / "summary.json").exists()  # the run did not finish
    written = sum(_lines(f) for f in [run / "generations.jsonl", *part_files(run / "generations.jsonl")])
    assert 0 < written < 120
    # the rerun (one process here) reads every part file and sends only what is not written; the cache answers
    # what finished but was not yet written
    code, cap = run_main([*gen, "--cache", cache, "--out", str(run)], capsys)
    assert code == 0, cap.err
    s = json.loads((run / "summary.json").read_text())
    assert s["rows_resumed"] == written and s["calls"] + s["cache_hits"] == 120 - written
    assert not part_files(run / "generations.jsonl")
    ref = tmp_path / "ref"
    assert run_main([*gen, "--cache", str(tmp_path / "ref.sqlite"), "--out", str(ref)], capsys)[0] == 0
    assert (run / "generations.jsonl").read_bytes() == (ref / "generations.jsonl").read_bytes()
