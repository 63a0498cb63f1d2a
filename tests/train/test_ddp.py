"""Two real CPU processes (gloo, via `accelerate launch`) agree with one process on the same global batch;
each process has its own RNG stream; an FSDP launch that accelerate cannot honour on CPU is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from crosstune.train.state_io import load_tree
from tests.conftest import REPO

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def config(tmp: Path, model: Path, data: Path, out: Path, **extra) -> Path:
    # dropout 0: dropout masks come from each process's own RNG and could not match a single process
    cfg = {"data": str(data), "output_dir": str(out), "model": {"name": str(model)}, "tokenize": {"max_length": 160},
           "batch": {"size": 2, "grad_accum": 1, "mode": "pad"}, "lora": {"dropout": 0.0},
           "optim": {"lr": 5e-3}, "precision": "fp32", "max_steps": 4, "eval_rows": 6, "save_steps": 2, **extra}
    path = tmp / f"{out.name}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def launch(config_file: str, cfg: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / config_file),
            "--main_process_port", str(port), "-m", "crosstune", "train", str(cfg)]


def test_two_processes_match_one(tiny_model_dir, mixture_file, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = [sys.executable, "-m", "crosstune", "train", str(config(tmp_path, tiny_model_dir, mixture_file, one)),
              "batch.grad_accum=2"]  # 1 process x 2 micro-batches = 2 processes x 1
    two_procs = launch("configs/accelerate/ddp_cpu.yaml", config(tmp_path, tiny_model_dir, mixture_file, two), 29517)
    r1 = subprocess.run(single, env=ENV, capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = subprocess.run(two_procs, env=ENV, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "x 2 proc (MULTI_CPU)" in r2.stderr  # really distributed, not two independent runs
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
    # each process continues its own RNG stream (dropout masks differ between processes); both were saved
    states = [load_tree(two / "checkpoint-4" / f"rng_{r}") for r in (0, 1)]  # JSON + safetensors, no pickle
    assert not torch.equal(states[0]["torch"], states[1]["torch"])
    assert states[0]["python"] != states[1]["python"]


def test_rank_streams_differ_with_dropout_and_resume_per_rank(tiny_model_dir, mixture_file, tmp_path):
    # dropout > 0: the two processes draw different masks, so the run cannot equal one process bit for bit;
    # what must hold is that each rank has its own stream and a resumed 2-process run replays it exactly
    # under bf16 autocast: the CPU defaults (bf16 frozen base, fused LoRA layers, compiled norms) under DDP
    out = tmp_path / "drop"
    cfg = config(tmp_path, tiny_model_dir, mixture_file, out, lora={"dropout": 0.5}, max_steps=3,
                 precision="bf16_autocast")
    r = subprocess.run(launch("configs/accelerate/ddp_cpu.yaml", cfg, 29519), env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    full = log(out)
    shutil.rmtree(out / "checkpoint-3")
    r = subprocess.run(launch("configs/accelerate/ddp_cpu.yaml", cfg, 29519)[:-1] + [str(cfg), "--resume"],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr and "frozen weights bfloat16, compiled norms" in r.stderr
    again = log(out)
    assert [x["loss"] for x in again] == [x["loss"] for x in full]
    states = [load_tree(out / "checkpoint-2" / f"rng_{k}") for k in (0, 1)]
    assert not torch.equal(states[0]["torch"], states[1]["torch"])


def test_fsdp_launch_on_cpu_is_refused_not_silently_ddp(tiny_model_dir, mixture_file, tmp_path):
    fsdp = tmp_path / "fsdp.yaml"
    fsdp.write_text((REPO / "configs/accelerate/ddp_cpu.yaml").read_text().replace(
        "distributed_type: MULTI_GPU", "distributed_type: FSDP") + "fsdp_config:\n  fsdp_version: 2\n")
    cmd = launch("configs/accelerate/ddp_cpu.yaml", config(tmp_path, tiny_model_dir, mixture_file, tmp_path / "f"),
                 29521)
    cmd[cmd.index("--config_file") + 1] = str(fsdp)
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "error: the accelerate config asks for FSDP" in r.stderr and "MULTI_CPU" in r.stderr
