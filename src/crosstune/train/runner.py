"""One run's steps: micro-batches with accumulation and DDP sync, logging, evaluation, checkpoints."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch

from crosstune.console import console
from crosstune.train import checkpoint
from crosstune.train.metrics_log import GroupLoss
from crosstune.train.packing import collate


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
        self.initial_eval: dict | None = None
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
        self.loss_mod.train()  # from_pretrained returns eval mode (PEFT sets only its own layers to train)
        if step == 0 and self.data.eval:  # the untrained model's held-out loss, the baseline of every curve
            self.initial_eval = {k.replace("eval_", "", 1): v for k, v in self.evaluate().items()}
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
        if not self.logged:  # the first record of a run carries the truncation/drop counts (and step-0 eval)
            rec["data"] = self.data.stats
            if self.initial_eval:
                rec["initial_eval"] = self.initial_eval
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
