"""`data translate` (HF engine: a tiny random MarianMT) and `data xinstruct` (a tiny random Llama) under `torchrun`
with 2 real CPU processes (gloo): the outputs equal a one-process run's byte for byte and the calls add up to the
one-process calls; a 2-process xinstruct run killed mid-run resumes on 2 processes without repeating a call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.data.test_translate_engines_hf import _marian
from tests.data.test_xinstruct_pipeline import _config, _entries

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _cmd(args: list[str], processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "crosstune", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "crosstune", *args]


def _run(args: list[str], cache: Path, processes: int) -> subprocess.CompletedProcess:
    r = subprocess.run(_cmd(args, processes), env={**ENV, "CROSSTUNE_CACHE": str(cache)}, cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _tree(pid: int) -> list[int]:
    """`pid` and every process below it (torchrun starts its workers in sessions of their own)."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += kids.get(out[-1], [])
    return out


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.integration
def test_translate_two_processes_equal_one(tmp_path):
    import torch
    from transformers import MarianMTModel

    model = _marian(tmp_path / "marian", [">>por<<", ">>spa<<", ">>eng<<"])
    marian = MarianMTModel.from_pretrained(model)
    with torch.no_grad():  # larger random weights: outputs that depend on the input (at 1x all are the same)
        for w in marian.parameters():
            w.mul_(20)
    marian.save_pretrained(model)
    words = ["alpha", "beta", "gamma", "delta", "river", "city", "stone", "light"]
    rows = [{"instruction": f"Describe the {words[i % 8]} number {i}. Keep it short.",
             "input": "" if i % 3 else f"The {words[(i + 3) % 8]} is {i * 7} km away. It is old.",
             "output": f"The {words[i % 8]} has {i} parts. Each part is small. We like it."} for i in range(12)]
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({
        "source": {"path": str(src), "format": "alpaca"}, "languages": ["pt", "es"],
        "engine": {"kind": "hf", "model": str(model), "batch_size": 4, "max_new_tokens": 10, "threads": 1},
        "signals": {"langid_backend": "pycld2", "round_trip": True}}), encoding="utf-8")
    args = ["data", "translate", str(cfg)]
    _run([*args, "--out", str(tmp_path / "one")], tmp_path / "c1", 1)
    r = _run([*args, "--out", str(tmp_path / "two")], tmp_path / "c2", 2)
    assert "2 processes: " in r.stderr and " segments each" in r.stderr
    _same_files(tmp_path / "one", tmp_path / "two", ["parallel.jsonl", "signals.jsonl", "excluded.jsonl",
                                                      "manifest.json"])
    one, two = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("one", "two"))
    assert two["processes"] == 2 and two["engine_calls"] == one["engine_calls"] > 0
    assert (two["segments"], two["cache_hits"]) == (one["segments"], one["cache_hits"])


@pytest.mark.integration
def test_xinstruct_two_processes_equal_one_and_a_killed_run_resumes(tiny_model_dir, tmp_path):
    cfg = _config(tmp_path, str(tiny_model_dir), 3, **{"model.batch_size": 2, "generate.max_new_tokens": 12})
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    del raw["model"]["cache"]  # $CROSSTUNE_CACHE per run: the same config file, the same manifest
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    args = ["data", "xinstruct", str(cfg)]
    files = ["train.jsonl", "excluded.jsonl", "manifest.json", "candidates.jsonl", "grades.jsonl"]
    _run([*args, "--out", str(tmp_path / "one")], tmp_path / "c1", 1)
    r = _run([*args, "--out", str(tmp_path / "two")], tmp_path / "c2", 2)
    assert "generate: 2 processes: 2 or 1 calls each" in r.stderr  # 6 passages, 2 per call
    assert "refine round 1: 2 processes: 3 calls each" in r.stderr  # 12 candidates
    _same_files(tmp_path / "one", tmp_path / "two", files)
    one, two = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("one", "two"))
    assert two["processes"] == 2 and two["model_calls"] == one["model_calls"] > 0
    assert two["cache_hits"] == one["cache_hits"]
    assert {k: v["calls"] for k, v in two["blocks"].items()} == {k: v["calls"] for k, v in one["blocks"].items()}

    # the machine dies mid-run (both workers and the launcher killed), then the run resumes on 2 processes
    db = tmp_path / "c3" / "calls.sqlite"
    proc = subprocess.Popen(_cmd([*args, "--out", str(tmp_path / "killed")], 2), cwd=REPO,
                            env={**ENV, "CROSSTUNE_CACHE": str(tmp_path / "c3")}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _entries(db) < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    for pid in reversed(_tree(proc.pid)):
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (tmp_path / "killed" / "train.jsonl").exists()  # nothing half-written
    done = _entries(db)
    assert 6 <= done < one["model_calls"]
    r = _run([*args, "--out", str(tmp_path / "resumed")], tmp_path / "c3", 2)
    resumed = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert resumed["model_calls"] == one["model_calls"] - done  # the work left, nothing more...
    assert _entries(db) == done + resumed["model_calls"]  # ...and no request sent twice
    assert resumed["cache_hits"] == one["cache_hits"] + done
