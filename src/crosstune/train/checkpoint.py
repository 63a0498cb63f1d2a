"""Checkpoints for exact resume: trainable weights, optimizer, scheduler, per-process RNG states, data position.

`checkpoint-STEP/` is written under a temporary name and renamed when complete, so a run killed mid-save
(SIGKILL) leaves either the previous checkpoint or the new one, never a half-written one that looks valid.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crosstune.errors import CrosstuneError

NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(out_dir: Path) -> list[Path]:
    found = [p for p in out_dir.glob("checkpoint-*") if NAME.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)))


def latest(out_dir: Path) -> Path | None:
    found = checkpoints(out_dir)
    return found[-1] if found else None


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save(out_dir: Path, step: int, model, optimizer, scheduler, state: dict, accelerator, keep: int) -> Path:
    final = out_dir / f"checkpoint-{step}"
    tmp = out_dir / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), tmp / f"rng_{accelerator.process_index}.pt")  # each process has its own RNG
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_file(trainable_state(model), tmp / "trainable.safetensors")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "world_size": accelerator.num_processes}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(ckpt: Path, model, optimizer, scheduler, accelerator) -> dict:
    state = json.loads((ckpt / "state.json").read_text())
    if state["world_size"] != accelerator.num_processes:
        raise CrosstuneError(f"{ckpt}: saved with {state['world_size']} processes, resuming with "
                             f"{accelerator.num_processes}; exact resume needs the same number")
    weights = load_file(ckpt / "trainable.safetensors")
    params = dict(model.named_parameters())
    unknown = sorted(set(weights) - {n for n, p in params.items() if p.requires_grad})
    if unknown:
        raise CrosstuneError(f"{ckpt}: weights {unknown[:3]} do not belong to this model/config")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    _set_rng_state(torch.load(ckpt / f"rng_{accelerator.process_index}.pt", weights_only=False))
    return state
