"""Two real CPU processes (gloo, via `accelerate launch`) agree with one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import REPO

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def config(tmp: Path, model: Path, data: Path, out: Path) -> Path:
    # dropout 0: dropout masks come from each process's own RNG and could not match a single process
    cfg = {"data": str(data), "output_dir": str(out), "model": {"name": str(model)}, "tokenize": {"max_length": 64},
           "batch": {"size": 2, "grad_accum": 1, "mode": "pad"}, "lora": {"dropout": 0.0},
           "optim": {"lr": 5e-3}, "precision": "fp32", "max_steps": 4, "eval_rows": 6}
    path = tmp / f"{out.name}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_two_processes_match_one(tiny_model_dir, mixture_file, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = [sys.executable, "-m", "crosstune", "train", str(config(tmp_path, tiny_model_dir, mixture_file, one)),
              "batch.grad_accum=2"]  # 1 process x 2 micro-batches = 2 processes x 1
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(REPO / "configs/accelerate/ddp_cpu.yaml"), "--main_process_port", "29517",
              "-m", "crosstune", "train", str(config(tmp_path, tiny_model_dir, mixture_file, two))]
    r1 = subprocess.run(single, env=ENV, capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = subprocess.run(launch, env=ENV, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "x 2 proc" in r2.stderr  # really distributed, not two independent runs
    a, b = log(one), log(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
        assert x["target_tokens"] == y["target_tokens"]
        for lang, v in x["loss_by_language"].items():
            assert v == pytest.approx(y["loss_by_language"][lang], abs=1e-5)
    assert a[-1]["eval_loss"] == pytest.approx(b[-1]["eval_loss"], abs=1e-5)
    w1 = load_file(one / "checkpoint-4" / "trainable.safetensors")
    w2 = load_file(two / "checkpoint-4" / "trainable.safetensors")
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-5
