"""The prepared GPU check: its bad-input exits and the parameter counts its MFU is computed from (the full dry run,
`bash benchmarks/gpu_check.sh run --device cpu --shape tiny ...`, is in docs/benchmarks/gpu.md; too slow for CI)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_run_without_the_carried_wheels_is_one_error(tmp_path):
    p = _run("run", "--device", "cpu", env_extra={"GPU_CHECK_DIR": str(tmp_path / "empty")})
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "no carried wheels or tokenizer" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


def test_unknown_verb_is_one_error():
    p = _run("launch")
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "expected 'prepare' or 'run'" in p.stderr


def test_flop_counts_match_the_models_it_builds(tmp_path):
    """The MFU's parameter counts equal the real model's matmul weights and PEFT's LoRA parameters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    gc = _check_module()
    for shape in ("tiny", "llama-3.2-1b"):
        cfg = LlamaConfig(vocab_size=512, **gc.SHAPES[shape])
        folder = tmp_path / shape
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
        base, lora = gc.lora_params(folder)
        if shape == "tiny":  # build it: the counts are those of the real modules
            model = LlamaForCausalLM(cfg)
            linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
            assert base == linear  # the head is tied to the embedding but still a matmul
            peft = get_peft_model(model, LoraConfig(r=gc.LORA["r"], lora_alpha=gc.LORA["alpha"],
                                                    target_modules=gc.LORA["targets"], task_type="CAUSAL_LM"))
            assert lora == sum(p.numel() for p in peft.parameters() if p.requires_grad)
        else:  # Llama-3.2-1B: 1.236B parameters with its 128,256 vocabulary (ours: 512 here)
            assert abs(base - (1_235_814_400 - 128_256 * 2048 + 512 * 2048 - 16 * 2 * 2048 - 2048)) < 1e3
