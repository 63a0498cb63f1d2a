"""The training loop: a lean torch loop on top of accelerate (DDP when launched with several processes).

Chosen over transformers' Trainer / TRL's SFTTrainer by `benchmarks/bench_train.py` (see docs/benchmarks/train.md):
logits only at target positions, length-grouped or packed batches, no per-step extras.
The loss of a step is the mean over all target tokens of the global batch (all micro-batches, all processes),
so 2 processes x N accumulation steps equal 1 process x 2N, and per-language sums add up exactly.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.train import checkpoint
from crosstune.train.config import TrainConfig
from crosstune.train.dataset import TrainData, load_data
from crosstune.train.lora import export
from crosstune.train.metrics_log import MetricsLog
from crosstune.train.model import TargetLoss, build_model, build_tokenizer
from crosstune.train.optim import build_optimizer
from crosstune.train.packing import check_isolation, epoch_plan
from crosstune.train.runner import Runner
from crosstune.models.render import resolve_template


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16_autocast"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()  # ~1.6x on this CPU (ENVIRONMENT.md 4)


class Plan:
    """Deterministic steps per epoch; the data position is (epoch, index of the step in that epoch)."""

    def __init__(self, data: TrainData, cfg: TrainConfig, mode: str, world: int):
        self.data, self.cfg, self.mode, self.world = data, cfg, mode, world
        self.micro_per_step = cfg.batch.grad_accum * world
        self._cache: dict[int, list] = {}
        self.lengths = [len(x.input_ids) for x in data.train]

    def epoch(self, e: int) -> list:
        if e not in self._cache:
            b = self.cfg.batch
            self._cache = {e: epoch_plan(self.lengths, self.mode, b.size, self.cfg.tokenize.max_length,
                                         self.micro_per_step, self.cfg.seed, e)}
        steps = self._cache[e]
        if not steps:
            raise CrosstuneError(f"{self.cfg.data}: {len(self.lengths)} usable rows are fewer than one global batch "
                                 f"(batch.size {self.cfg.batch.size} x grad_accum {self.cfg.batch.grad_accum} "
                                 f"x {self.world} processes)")
        return steps

    def total_steps(self) -> int:
        if self.cfg.max_steps:
            return self.cfg.max_steps
        whole, frac = int(self.cfg.epochs), self.cfg.epochs - int(self.cfg.epochs)
        n = sum(len(self.epoch(e)) for e in range(whole))
        return n + (int(frac * len(self.epoch(whole))) if frac else 0)


def _batch_mode(cfg: TrainConfig, model, vocab: int) -> str:
    if cfg.batch.mode != "pack":
        return cfg.batch.mode
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    was_training = hf.training
    hf.eval()
    ok = check_isolation(hf, vocab)
    hf.train(was_training)
    if not ok:
        console.print(f"[yellow]warning:[/] attention implementation {hf.config._attn_implementation!r} of this "
                      "model does not isolate packed examples via position_ids; using length-grouped padding")
        return "pad"
    return "pack"


def _prepare_output(out: Path, resume: bool) -> Path | None:
    out.mkdir(parents=True, exist_ok=True)
    last = checkpoint.latest(out)
    if last and not resume:
        raise CrosstuneError(f"{out} already has checkpoints ({last.name}); pass --resume to continue, "
                             "or choose another output_dir")
    if resume and last is None:
        console.print(f"[yellow]note:[/] --resume: no checkpoint in {out}, starting from step 0")
    return last if resume else None


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    from accelerate import Accelerator

    # cpu=True is what makes accelerate use DDP over gloo when launched with several CPU processes
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    if cfg.threads:  # with more busy threads than cores, OpenMP barriers stall: 1 thread was ~7x faster here
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    last = _prepare_output(out, resume) if accelerator.is_main_process else checkpoint.latest(out) if resume else None
    # tokenizer and data before the (slow) model: bad input fails fast
    tokenizer = build_tokenizer(cfg)
    template = resolve_template(cfg.tokenize.template, tokenizer)
    data = load_data(cfg, tokenizer, template)
    seed_everything(cfg.seed)  # before the model: LoRA init is seeded and equal on all processes
    model = build_model(cfg, verbose=accelerator.is_main_process)
    mode = _batch_mode(cfg, model, len(tokenizer))
    plan = Plan(data, cfg, mode, accelerator.num_processes)
    total = plan.total_steps()
    optimizer, scheduler = build_optimizer(model, cfg.optim, total)
    loss_mod = accelerator.prepare_model(TargetLoss(model))
    state = {"step": 0, "epoch": 0, "index": 0}
    if last is not None:
        state = checkpoint.load(last, model, optimizer, scheduler, accelerator)
        if accelerator.is_main_process:
            console.print(f"resumed from {last} (step {state['step']})")
    log = MetricsLog(out, accelerator.is_main_process, state["step"] if last else None, cfg.log.tensorboard,
                     cfg.log.wandb, cfg.model_dump(mode="json"))
    bf16 = use_bf16(cfg.precision, accelerator.device)
    if accelerator.is_main_process:
        console.print(f"training {total} steps: {len(data.train)} rows, batch {cfg.batch.size} x accum "
                      f"{cfg.batch.grad_accum} x {accelerator.num_processes} proc, mode {mode}, "
                      f"{'bf16 autocast' if bf16 else 'fp32'}, template {template}")
    run = Runner(cfg, accelerator, loss_mod, optimizer, scheduler, data, plan, log, bf16, tokenizer.pad_token_id)
    run.loop(state, total)
    result = {"steps": total, "final_loss": run.last_loss, "output_dir": str(out)}
    if accelerator.is_main_process:
        result.update(export(accelerator.unwrap_model(loss_mod).model, tokenizer, out, cfg.method, cfg.merge))
    log.close()
    accelerator.wait_for_everyone()
    return result
