"""Checkpoints written atomically as JSON + safetensors (no pickle), with the run's own state.

Without a sharding engine crosstune writes every file itself: `trainable.safetensors` (LoRA and `modules_to_save`,
or the whole model for full fine-tuning; never the frozen base), `optimizer`, `scheduler` and `state` (our
`TrainState`: data position, the loss window since the last log record, ...) as `.json` + `.safetensors` pairs
(train/state_io.py), and `rng_<process>` per process (python, numpy, torch and CUDA generators, and accelerate's
step counter). Loading reads JSON and safetensors only: nothing is unpickled, so a crafted checkpoint cannot run
code (accelerate's `load_state` would read registered objects from `custom_checkpoint_0.pkl` with
`weights_only=False`). Under FSDP/DeepSpeed the engine's shards go through `accelerator.save_state`/`load_state`
(its own formats; model, optimizer and RNG files loaded with `weights_only=True`) with no custom object registered
there: crosstune's state is still `state.json`. `run.json` (resume.fingerprint) is written beside them for the
strict-resume check.

`checkpoint-STEP/` is written under a temporary name and renamed when complete, so a run killed mid-save
(SIGKILL) leaves either the previous checkpoint or the new one, never a half-written one that looks valid.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import weakref
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crosstune.errors import CrosstuneError
from crosstune.train.state_io import load_tree, save_tree

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


_MODELS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # accelerator -> the unwrapped PEFT/HF model


def register_hooks(accelerator, model) -> None:
    """Name the model whose trainable weights a checkpoint holds (`model`: the unwrapped PEFT/HF model)."""
    _MODELS[accelerator] = model


def _objects(accelerator) -> list:
    return list(accelerator._custom_objects)  # what `register_for_checkpointing` collected (our TrainState)


@contextmanager
def _no_custom_objects(accelerator):
    """accelerate pickles registered objects; it gets none, crosstune saves them as JSON."""
    saved, accelerator._custom_objects = accelerator._custom_objects, []
    try:
        yield
    finally:
        accelerator._custom_objects = saved


def _rng_state(accelerator) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "step": accelerator.step}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, accelerator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    accelerator.step = state["step"]


def _save_plain(accelerator, folder: Path) -> None:
    if accelerator.is_main_process:
        save_file(trainable_state(_MODELS[accelerator]), folder / TRAINABLE)
        for i, opt in enumerate(accelerator._optimizers):
            save_tree(opt.state_dict(), folder / f"optimizer_{i}")
        for i, sched in enumerate(accelerator._schedulers):
            save_tree(sched.state_dict(), folder / f"scheduler_{i}")
    save_tree(_rng_state(accelerator), folder / f"rng_{accelerator.process_index}")


def _load_plain(accelerator, folder: Path) -> None:
    model = _MODELS[accelerator]
    weights = load_file(folder / TRAINABLE)
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != trainable:
        odd = sorted(set(weights) ^ trainable)[:3]
        raise CrosstuneError(f"{folder}: trainable weights {odd} do not match this model/config")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    for i, opt in enumerate(accelerator._optimizers):
        opt.load_state_dict(load_tree(folder / f"optimizer_{i}"))
    for i, sched in enumerate(accelerator._schedulers):
        sched.load_state_dict(load_tree(folder / f"scheduler_{i}"))
    _set_rng_state(load_tree(folder / f"rng_{accelerator.process_index}"), accelerator)


def save(accelerator, out_dir: Path, step: int, run_info: dict, keep: int) -> Path:
    final = out_dir / f"checkpoint-{step}"
    tmp = out_dir / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if sharded(accelerator):
        with _no_custom_objects(accelerator):
            accelerator.save_state(str(tmp))
    else:
        _save_plain(accelerator, tmp)
    if accelerator.is_main_process:
        for i, obj in enumerate(_objects(accelerator)):
            save_tree(obj.state_dict(), tmp / ("state" if i == 0 else f"state_{i}"))
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
    """Restore a checkpoint that `save` wrote, reading JSON and safetensors only (nothing is unpickled)."""
    if sharded(accelerator):
        with _no_custom_objects(accelerator):
            accelerator.load_state(str(ckpt))
    else:
        _load_plain(accelerator, ckpt)
    for i, obj in enumerate(_objects(accelerator)):
        obj.load_state_dict(load_tree(ckpt / ("state" if i == 0 else f"state_{i}")))
