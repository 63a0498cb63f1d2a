"""Exact and strict resume: a run killed with SIGKILL and resumed writes the same log and weights as an
uninterrupted run (save_steps not a multiple of log.every); resuming with a changed config is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TIMING = ("seconds", "tokens_per_s")  # wall-clock fields, the only ones allowed to differ


def write_config(path: Path, model: Path, data: Path, out: Path, **extra) -> Path:
    cfg = {"data": str(data), "output_dir": str(out), "model": {"name": str(model)},
           "tokenize": {"max_length": 160}, "batch": {"size": 2, "grad_accum": 2, "mode": "pack"},
           "optim": {"lr": 5e-3}, "precision": "fp32", "max_steps": 20, "save_steps": 4, "eval_rows": 6,
           "lora": {"dropout": 0.1}, "log": {"every": 3, "eval_every": 9}, **extra}
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "crosstune", "train", *args]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tiny_model_dir, mixture_file, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ref")
    cfg = write_config(tmp / "ref.yaml", tiny_model_dir, mixture_file, tmp / "ref")
    subprocess.run(cli(str(cfg)), check=True, env=ENV, capture_output=True)
    return cfg, tmp / "ref"


def test_sigkill_then_resume_writes_the_uninterrupted_log(reference, tiny_model_dir, mixture_file, tmp_path):
    _, ref = reference
    run = tmp_path / "killed"
    cfg = write_config(tmp_path / "killed.yaml", tiny_model_dir, mixture_file, run)
    proc = subprocess.Popen(cli(str(cfg)), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint-8").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "checkpoint-20").exists()
    # checkpoint 8 holds a loss window of steps 7-8 (the last record was step 6)
    assert max(r["step"] for r in read_log(run)) < 20

    done = subprocess.run(cli(str(cfg), "--resume"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    got, want = read_log(run), read_log(ref)
    assert [r["step"] for r in got] == [3, 6, 9, 12, 15, 18, 20]  # replaced after the checkpoint, not duplicated
    for a, b in zip(got, want):
        assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    w_got = load_file(run / "checkpoint-20" / "trainable.safetensors")
    w_ref = load_file(ref / "checkpoint-20" / "trainable.safetensors")
    assert all(bool((w_got[k] == w_ref[k]).all()) for k in w_ref)


def resume(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli(str(cfg), "--resume", *args), env=ENV, capture_output=True, text=True)


def test_resume_with_changed_config_or_data_is_refused(reference, tmp_path):
    cfg, ref = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    c = tmp_path / "c.yaml"
    c.write_text(cfg.read_text().replace(str(ref), str(out)))
    r = resume(c, "seed=43", "batch.size=4", "optim.scheduler=linear")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = next(x for x in r.stderr.splitlines() if x.startswith("error:"))
    assert "cannot resume" in line and "seed (42 -> 43)" in line and "batch.size (2 -> 4)" in line
    assert "optim.scheduler" in line and "--allow-changed" in line
    # keys that do not change what is trained are free; an explicit override accepts a change
    assert resume(c, "save_steps=7", "log.eval_every=3").returncode == 0
    ok = resume(c, "seed=43", "--allow-changed", "seed")
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_resume_with_the_same_data_path_but_other_bytes_is_refused(tiny_model_dir, mixture_file, tmp_path):
    data = tmp_path / "train.jsonl"
    shutil.copy(mixture_file, data)
    cfg = write_config(tmp_path / "c.yaml", tiny_model_dir, data, tmp_path / "out", max_steps=2, save_steps=0)
    subprocess.run(cli(str(cfg)), check=True, env=ENV, capture_output=True)
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:-1]))  # one row fewer
    r = resume(cfg)
    assert r.returncode == 2 and "data (contents)" in r.stderr and "Traceback" not in r.stderr


def test_fresh_run_refuses_existing_checkpoints(reference):
    cfg, _ = reference
    again = subprocess.run(cli(str(cfg)), env=ENV, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
