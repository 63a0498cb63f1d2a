"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends (fp32, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def write_config(path: Path, model: Path, data: Path, out: Path, **extra) -> Path:
    cfg = {"data": str(data), "output_dir": str(out), "model": {"name": str(model)},
           "tokenize": {"max_length": 64}, "batch": {"size": 2, "grad_accum": 2, "mode": "pack"},
           "optim": {"lr": 5e-3}, "precision": "fp32", "max_steps": 40, "save_steps": 4, "eval_rows": 6,
           "lora": {"dropout": 0.1}, "log": {"eval_every": 20}, **extra}
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "crosstune", "train", *args]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_matches_uninterrupted(tiny_model_dir, mixture_file, tmp_path):
    ref = tmp_path / "ref"
    cfg_ref = write_config(tmp_path / "ref.yaml", tiny_model_dir, mixture_file, ref)
    subprocess.run(cli(str(cfg_ref)), check=True, env=ENV, capture_output=True)

    run = tmp_path / "killed"
    cfg = write_config(tmp_path / "killed.yaml", tiny_model_dir, mixture_file, run)
    proc = subprocess.Popen(cli(str(cfg)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint-8").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "checkpoint-40").exists()
    killed_at = max(r["step"] for r in read_log(run))
    assert killed_at < 40

    done = subprocess.run(cli(str(cfg), "--resume"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    got, want = read_log(run), read_log(ref)
    assert [r["step"] for r in got] == list(range(1, 41))  # records after the checkpoint were replaced, not duplicated
    for a, b in zip(got, want):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6), a["step"]
        assert a["loss_by_language"].keys() == b["loss_by_language"].keys()
    assert got[-1]["eval_loss"] == pytest.approx(want[-1]["eval_loss"], abs=1e-6)
    w_got = load_file(run / "checkpoint-40" / "trainable.safetensors")
    w_ref = load_file(ref / "checkpoint-40" / "trainable.safetensors")
    assert max(float((w_got[k] - w_ref[k]).abs().max()) for k in w_ref) < 1e-6


def test_fresh_run_refuses_existing_checkpoints(tiny_model_dir, mixture_file, tmp_path):
    out = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_model_dir, mixture_file, out, max_steps=2, save_steps=0)
    subprocess.run(cli(str(cfg)), check=True, env=ENV, capture_output=True)
    again = subprocess.run(cli(str(cfg)), env=ENV, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
