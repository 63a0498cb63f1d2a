"""`accelerate launch` with 2 real CPU processes (gloo): each scores half of the prompts, process 0 merges, and the
result is the one-process result: same predictions file (item order) and the same summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared_path

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _run(cmd):
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.integration
def test_two_processes_equal_one(tiny_model_dir, tmp_path):
    ENV["CROSSTUNE_DATA"] = str(shared_path())
    args = ["eval", "run", "--model", str(tiny_model_dir), "--tasks", "cross_mmlu,mgsm", "--languages", "en,zh,es",
            "--limit", "3", "--max-new-tokens", "6", "--n-boot", "50", "--threads", "1"]
    one, two, three = tmp_path / "one", tmp_path / "two", tmp_path / "three"
    # each launch its own call cache, so the two-process run really scores (both processes write one SQLite file)
    _run([sys.executable, "-m", "crosstune", *args, "--cache", str(tmp_path / "one.sqlite"), "--out", str(one)])
    r = _run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO / "configs/accelerate/ddp_cpu.yaml"), "--main_process_port", "29533",
              "-m", "crosstune", *args, "--cache", str(tmp_path / "two.sqlite"), "--out", str(two)])
    assert "(process 1)" in r.stderr and "(process 0)" in r.stderr  # both processes scored prompts
    calls = {t: json.loads((two / t / "timing.json").read_text())["model_calls"] for t in ("cross_mmlu", "mgsm")}
    assert calls == {"cross_mmlu": 3 * 3 * 4, "mgsm": 3 * 3}  # summed over the processes
    # every result both processes stored is in the cache: a rerun into a new folder makes no model calls
    r = _run([sys.executable, "-m", "crosstune", *args, "--cache", str(tmp_path / "two.sqlite"), "--out", str(three)])
    assert "model calls: 0, cached: 45" in r.stderr
    for task in ("cross_mmlu", "mgsm"):
        a = [json.loads(x) for x in (one / task / "predictions.jsonl").read_text().splitlines()]
        b = [json.loads(x) for x in (two / task / "predictions.jsonl").read_text().splitlines()]
        assert [(x["id"], x["language"], x["key"], x["correct"]) for x in a] == \
               [(y["id"], y["language"], y["key"], y["correct"]) for y in b]
        for x, y in zip(a, b):
            for p, q in zip(x.get("logprobs", []), y.get("logprobs", [])):
                assert p == pytest.approx(q, abs=1e-4)  # batches differ: float sums may differ in the last digits
        sa, sb = (json.loads((d / task / "summary.json").read_text()) for d in (one, two))
        assert sa == sb
        assert (two / task / "summary.json").read_bytes() == (three / task / "summary.json").read_bytes()
        assert not list((two / task).glob("predictions.part*"))
