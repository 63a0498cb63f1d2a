"""Loss by response language and CrossIn mode; JSONL log always (`output_dir/log.jsonl`), tensorboard/wandb
when installed. Only the main process writes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch


class GroupLoss:
    """Token-weighted loss sums per group (language, mode); reduced across processes before reading."""

    def __init__(self, languages: list[str], modes: list[str]):
        self.languages, self.modes = languages, modes
        self.reset()

    def reset(self) -> None:
        self.lang = torch.zeros(2, len(self.languages), dtype=torch.float64)
        self.mode = torch.zeros(2, len(self.modes), dtype=torch.float64)

    def add(self, loss: torch.Tensor, lang: torch.Tensor, mode: torch.Tensor) -> None:
        loss = loss.detach().double().cpu()
        for acc, ids in ((self.lang, lang.cpu()), (self.mode, mode.cpu())):
            n = acc.shape[1]
            acc[0] += torch.bincount(ids, weights=loss, minlength=n)
            acc[1] += torch.bincount(ids, minlength=n).double()

    def reduce(self, accelerator) -> "GroupLoss":
        if accelerator.num_processes > 1:
            self.lang = accelerator.reduce(self.lang.to(accelerator.device), "sum").cpu()
            self.mode = accelerator.reduce(self.mode.to(accelerator.device), "sum").cpu()
        return self

    @property
    def tokens(self) -> int:
        return int(self.lang[1].sum())

    def summary(self, prefix: str = "") -> dict:
        total = self.lang[0].sum() / max(self.lang[1].sum(), 1)
        return {f"{prefix}loss": round(float(total), 6),
                f"{prefix}loss_by_language": _by(self.languages, self.lang),
                f"{prefix}loss_by_mode": _by(self.modes, self.mode),
                f"{prefix}target_tokens": self.tokens}


def _by(names: list[str], acc: torch.Tensor) -> dict:
    return {n: round(float(acc[0, i] / acc[1, i]), 6) for i, n in enumerate(names) if acc[1, i] > 0}


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Pace:
    """Steps done of the total, the time since this run (or its resume) began, and the time left at that pace:
    `step 12/60, 1m05s, ETA 4m20s`. `due()`: no line for `every` seconds (a line between sparse log records)."""

    def __init__(self, start_step: int, total: int, every: float = 60.0):
        self.start_step, self.total, self.every = start_step, total, every
        self.t0 = self.last = time.perf_counter()

    def text(self, step: int) -> str:
        self.last = now = time.perf_counter()
        done, left = step - self.start_step, self.total - step
        eta = f", ETA {_duration((now - self.t0) / done * left)}" if done > 0 and left > 0 else ""
        return f"step {step}/{self.total}, {_duration(now - self.t0)}{eta}"

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.every


class MetricsLog:
    def __init__(self, out_dir: Path, active: bool, resume_step: int | None, use_tb: bool, use_wandb: bool,
                 config: dict):
        self.path = out_dir / "log.jsonl"
        self.active = active
        self.tb = self.wandb = None
        if not active:
            return
        if resume_step is not None and self.path.exists():  # drop records a killed run wrote after its checkpoint
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        elif resume_step is None:
            self.path.write_text("")
        if use_tb:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step: events a killed run wrote after its checkpoint are dropped, as in log.jsonl
                self.tb = SummaryWriter(str(out_dir / "tensorboard"),
                                        purge_step=None if resume_step is None else resume_step + 1)
            except ImportError:
                pass
        if use_wandb:
            try:
                import wandb

                self.wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "crosstune"), config=config,
                                        resume="allow", dir=str(out_dir))
            except ImportError:
                pass

    def write(self, record: dict) -> None:
        if not self.active:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        flat = _flatten(record)
        if self.tb:
            for k, v in flat.items():
                self.tb.add_scalar(k, v, record["step"])
        if self.wandb:
            self.wandb.log(flat, step=record["step"])

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and k != "step":
            out[prefix + k] = v
    return out
