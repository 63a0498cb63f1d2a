"""The training loop: a lean torch loop on top of accelerate (DDP when launched with several processes).

Chosen over transformers' Trainer / TRL's SFTTrainer by `benchmarks/bench_train.py` (see docs/benchmarks/train.md):
logits only at target positions, length-grouped or packed batches, no per-step extras.
The loss of a step is the mean over all target tokens of the global batch (all micro-batches, all processes),
so 2 processes x N accumulation steps equal 1 process x 2N, and per-language sums add up exactly.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.train import checkpoint
from crosstune.train.config import TrainConfig
from crosstune.train.dataset import TrainData, load_data
from crosstune.train.lora import export
from crosstune.train.metrics_log import GroupLoss, MetricsLog
from crosstune.train.model import TargetLoss, build
from crosstune.train.optim import build_optimizer
from crosstune.train.packing import check_isolation, collate, epoch_plan
from crosstune.train.templates import resolve_template


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
    out = Path(cfg.output_dir)
    last = _prepare_output(out, resume) if accelerator.is_main_process else checkpoint.latest(out) if resume else None
    seed_everything(cfg.seed)  # before the model: LoRA init is seeded and equal on all processes
    model, tokenizer = build(cfg, verbose=accelerator.is_main_process)
    template = resolve_template(cfg.tokenize.template, tokenizer)
    data = load_data(cfg, tokenizer, template)
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


class Runner:
    """Steps, logging, evaluation and checkpoints for one run."""

    def __init__(self, cfg, accelerator, loss_mod, optimizer, scheduler, data, plan, log, bf16, pad_id):
        self.cfg, self.acc, self.loss_mod, self.opt, self.sched = cfg, accelerator, loss_mod, optimizer, scheduler
        self.data, self.plan, self.log, self.bf16 = data, plan, log, bf16
        self.window = GroupLoss(data.languages, data.modes)
        self.lang_index = {x: i for i, x in enumerate(data.languages)}
        self.mode_index = {x: i for i, x in enumerate(data.modes)}
        self.pad_id = pad_id
        self.last_loss = float("nan")
        self.logged = False
        self.params = [p for p in loss_mod.parameters() if p.requires_grad]

    def autocast(self):
        return torch.autocast(self.acc.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def batch(self, micro, split="train"):
        rows, mode = (self.data.train, self.plan.mode) if split == "train" else (self.data.eval, "pad")
        b = collate(micro, rows, self.pad_id, mode, self.lang_index, self.mode_index)
        return {k: (v.to(self.acc.device) if torch.is_tensor(v) else v) for k, v in b.items()}

    def forward(self, b, module):
        with self.autocast():
            losses = module(b["input_ids"], b["position_ids"], b["attention_mask"], b["targets"])
        sel = b["targets"] != -100
        return losses, b["lang"][sel], b["mode"][sel]

    def train_step(self, step_plan) -> tuple[float | None, int]:
        rank, ga, world = self.acc.process_index, self.cfg.batch.grad_accum, self.acc.num_processes
        n_targets = max(1, sum(self.data.targets(i) for micro in step_plan for row in micro for i in row))
        real = 0
        for j, micro in enumerate(step_plan[rank * ga:(rank + 1) * ga]):
            b = self.batch(micro)
            real += b["real_tokens"]
            sync = contextlib.nullcontext() if j == ga - 1 else self.acc.no_sync(self.loss_mod)
            with sync:
                losses, lang, mode = self.forward(b, self.loss_mod)
                # DDP averages gradients over processes, hence the factor `world`
                self.acc.backward(losses.sum() * (world / n_targets))
            self.window.add(losses, lang, mode)
        norm = None
        if self.cfg.optim.max_grad_norm:
            norm = float(self.acc.clip_grad_norm_(self.params, self.cfg.optim.max_grad_norm))
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return norm, real

    def loop(self, state: dict, total: int) -> None:
        step, epoch, index = state["step"], state["epoch"], state["index"]
        tokens, t0, norm = 0, time.perf_counter(), None
        while step < total:
            steps = self.plan.epoch(epoch)
            if index >= len(steps):
                epoch, index = epoch + 1, 0
                continue
            norm, real = self.train_step(steps[index])
            tokens += real
            step, index = step + 1, index + 1
            if step % self.cfg.log.every == 0 or step == total:
                record = self.record(step, epoch + index / len(steps), norm, tokens, time.perf_counter() - t0)
                if self._eval_due(step, total):
                    record.update(self.evaluate())
                self.log.write(record)
                tokens, t0 = 0, time.perf_counter()
            if (self.cfg.save_steps and step % self.cfg.save_steps == 0) or step == total:
                checkpoint.save(Path(self.cfg.output_dir), step, self.acc.unwrap_model(self.loss_mod).model,
                                self.opt, self.sched, {"step": step, "epoch": epoch, "index": index},
                                self.acc, self.cfg.save_total_limit)
                t0 = time.perf_counter()

    def _eval_due(self, step: int, total: int) -> bool:
        every = self.cfg.log.eval_every
        return bool(self.data.eval) and (step == total or (every and step % every == 0))

    def record(self, step, epoch, norm, tokens, seconds) -> dict:
        g = self.window.reduce(self.acc)
        tokens = int(self.acc.reduce(torch.tensor(tokens, device=self.acc.device), "sum")) \
            if self.acc.num_processes > 1 else tokens
        rec = {"step": step, "epoch": round(epoch, 4), **g.summary(), "lr": self.sched.get_last_lr()[0],
               "grad_norm": norm, "tokens": tokens, "tokens_per_s": round(tokens / max(seconds, 1e-9), 2),
               "seconds": round(seconds, 3)}
        if not self.logged:  # the first record of a run carries the truncation/drop counts
            rec["data"] = self.data.stats
            self.logged = True
        self.last_loss = rec["loss"]
        if self.acc.is_main_process:
            console.print(f"step {step}: loss {rec['loss']:.4f} " +
                          " ".join(f"{k} {v:.3f}" for k, v in rec["loss_by_language"].items()) +
                          f" | {rec['tokens_per_s']:.0f} tok/s")
        self.window.reset()
        return rec

    @torch.no_grad()
    def evaluate(self) -> dict:
        module = self.acc.unwrap_model(self.loss_mod)
        module.eval()
        order = sorted(range(len(self.data.eval)), key=lambda i: len(self.data.eval[i].input_ids))
        size, rank, world = self.cfg.batch.size, self.acc.process_index, self.acc.num_processes
        micros = [[[i] for i in order[s:s + size]] for s in range(0, len(order), size)]
        acc = GroupLoss(self.data.languages, self.data.modes)
        for micro in micros[rank::world]:
            acc.add(*self.forward(self.batch(micro, "eval"), module))
        module.train()
        return acc.reduce(self.acc).summary("eval_")
