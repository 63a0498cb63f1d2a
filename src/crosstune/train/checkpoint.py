"""Checkpoints through `accelerator.save_state`/`load_state`, written atomically, with the run's own state.

accelerate saves the optimizer, scheduler, every process's RNG states (python, numpy, torch) and the objects
registered with `register_for_checkpointing` (our `TrainState`: data position, the loss window since the last
log record, ...); DDP/FSDP/DeepSpeed engines save their model and optimizer shards as accelerate documents.
Without a sharding engine, a hook stores only the trainable weights (`trainable.safetensors`: LoRA and
`modules_to_save`, or the whole model for full fine-tuning) instead of the frozen base model.
`run.json` (resume.fingerprint) is written beside them for the strict-resume check.

`checkpoint-STEP/` is written under a temporary name and renamed when complete, so a run killed mid-save
(SIGKILL) leaves either the previous checkpoint or the new one, never a half-written one that looks valid.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from crosstune.errors import CrosstuneError

NAME = re.compile(r"^checkpoint-(\d+)$")
TRAINABLE = "trainable.safetensors"


def checkpoints(out_dir: Path) -> list[Path]:
    found = [p for p in out_dir.glob("checkpoint-*") if NAME.match(p.name) and (p / "run.json").is_file()]
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)))


def latest(out_dir: Path) -> Path | None:
    found = checkpoints(out_dir)
    return found[-1] if found else None


def sharded(accelerator) -> bool:
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED", "MEGATRON_LM")


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def register_hooks(accelerator, model) -> None:
    """Without a sharding engine: save/load only the trainable weights of `model` (the unwrapped PEFT/HF model)."""
    if sharded(accelerator):
        return

    def save_hook(models, weights, output_dir):
        weights.clear()  # not the full state dict (frozen base weights) ...
        if accelerator.is_main_process:  # ... only what training changes
            save_file(trainable_state(model), Path(output_dir) / TRAINABLE)

    def load_hook(models, input_dir):
        models.clear()  # accelerate would load a full, strict state dict
        weights = load_file(Path(input_dir) / TRAINABLE)
        params = dict(model.named_parameters())
        trainable = {n for n, p in params.items() if p.requires_grad}
        if set(weights) != trainable:
            odd = sorted(set(weights) ^ trainable)[:3]
            raise CrosstuneError(f"{input_dir}: trainable weights {odd} do not match this model/config")
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save(accelerator, out_dir: Path, step: int, run_info: dict, keep: int) -> Path:
    final = out_dir / f"checkpoint-{step}"
    tmp = out_dir / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "run.json").write_text(json.dumps({**run_info, "step": step}, indent=1, ensure_ascii=False))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator, ckpt: Path) -> None:
    accelerator.load_state(str(ckpt))
