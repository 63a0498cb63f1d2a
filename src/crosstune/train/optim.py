"""The optimizer (AdamW with decoupled weight decay, not on biases and norms, unless the config names another)
and a warmup + cosine/linear/constant schedule."""

from __future__ import annotations

import inspect
import math

import torch

from crosstune.errors import CrosstuneError
from crosstune.registry import Registry
from crosstune.train.config import OptimSection

OPTIMIZERS = Registry("optimizer", {"adamw": torch.optim.AdamW}, callable,
                      "a torch.optim.Optimizer class, or a factory (param_groups, lr=..., **optimizer_args) "
                      "returning one")


def _kwargs(cfg: OptimSection, factory) -> dict:
    return {"lr": cfg.lr, **({"betas": cfg.betas} if factory is torch.optim.AdamW else {}), **cfg.optimizer_args}


def check_optimizer_args(cfg: OptimSection) -> None:
    """A ValueError (the config field's error) when the optimizer does not take `optimizer_args`."""
    factory = OPTIMIZERS.get(cfg.optimizer or "adamw")
    try:
        inspect.signature(factory).bind([], **_kwargs(cfg, factory))
    except TypeError as e:
        raise ValueError(f"optimizer_args {sorted(cfg.optimizer_args)} do not fit {cfg.optimizer or 'adamw'} "
                         f"({e})") from None
    except ValueError:  # no signature to read: the call will tell
        pass


def build_optimizer(model, cfg: OptimSection, total_steps: int):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    factory = OPTIMIZERS.get(cfg.optimizer or "adamw", "optim.optimizer")
    kwargs = _kwargs(cfg, factory)
    try:
        optimizer = factory(groups, **kwargs)
    except TypeError as e:
        raise CrosstuneError(f"optim.optimizer {cfg.optimizer!r}: bad optimizer_args ({e})") from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise CrosstuneError(f"optim.optimizer {cfg.optimizer!r}: expected {OPTIMIZERS.expected}, "
                             f"got a {type(optimizer).__name__}")
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg.scheduler, warmup, total_steps))
    return optimizer, scheduler


def _schedule(kind: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if kind == "linear":
            return max(0.0, 1 - progress)
        return 1.0
    return factor
