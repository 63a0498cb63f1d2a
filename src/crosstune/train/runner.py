"""One run's steps on prepared objects: accumulation via `accelerator.accumulate`, logging, evaluation, checkpoints.

The loss of a step is the mean over all target tokens of the global batch (every micro-batch of every process):
each micro-batch's summed token losses are scaled by `world * grad_accum / step_targets`; accelerate divides by
`grad_accum` and DDP/FSDP/DeepSpeed average over processes, which leaves `sum / step_targets`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from crosstune.console import console
from crosstune.train import checkpoint
from crosstune.train.metrics_log import GroupLoss, Pace
from crosstune.train.packing import collate


class TrainState:
    """Everything besides weights/optimizer/RNG that a resumed run needs to continue the same log:
    data position, and the loss window, token count and first-record flags since the last log record.
    Registered with `accelerator.register_for_checkpointing`; only the main process's copy is saved, so the
    window is summed over processes into it before saving (`gather`) and other processes restart from zero."""

    def __init__(self, window: GroupLoss, is_main: bool):
        self.window, self.is_main = window, is_main
        self.step = self.epoch = self.index = self.tokens = 0
        self.logged = False
        self.initial_eval: dict | None = None

    def gather(self, accelerator) -> None:
        self.window.reduce(accelerator)
        if accelerator.num_processes > 1:
            self.tokens = int(accelerator.reduce(torch.tensor(self.tokens, device=accelerator.device), "sum"))
        if not accelerator.is_main_process:
            self.window.reset()
            self.tokens = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "index": self.index, "tokens": self.tokens,
                "logged": self.logged, "initial_eval": self.initial_eval,
                "window": {"lang": self.window.lang.clone(), "mode": self.window.mode.clone()}}

    def load_state_dict(self, sd: dict) -> None:
        self.step, self.epoch, self.index, self.logged = sd["step"], sd["epoch"], sd["index"], sd["logged"]
        self.initial_eval = sd["initial_eval"]
        self.window.reset()
        self.tokens = 0
        if self.is_main:
            self.window.lang, self.window.mode, self.tokens = sd["window"]["lang"], sd["window"]["mode"], sd["tokens"]


class Runner:
    """Steps, logging, evaluation and checkpoints for one run."""

    def __init__(self, cfg, accelerator, model, optimizer, scheduler, loader, batches, data, plan, log, bf16,
                 pad_id, state: TrainState, run_info: dict):
        self.cfg, self.acc, self.model, self.opt, self.sched = cfg, accelerator, model, optimizer, scheduler
        self.loader, self.batches, self.data, self.plan, self.log, self.bf16 = loader, batches, data, plan, log, bf16
        self.state, self.run_info = state, run_info
        self.lang_index = {x: i for i, x in enumerate(data.languages)}
        self.mode_index = {x: i for i, x in enumerate(data.modes)}
        self.pad_id = pad_id
        self.last_loss = float("nan")

    def autocast(self):
        return torch.autocast(self.acc.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def forward(self, b):
        with self.autocast():
            losses = self.model(b["input_ids"], b["position_ids"], b["attention_mask"], b["targets"])
        sel = b["targets"] != -100
        return losses, b["lang"][sel], b["mode"][sel]

    def train_step(self, micros) -> float | None:
        scale = self.acc.num_processes * self.cfg.batch.grad_accum
        for b in micros:
            self.state.tokens += b["real_tokens"]
            with self.acc.accumulate(self.model):
                losses, lang, mode = self.forward(b)
                self.acc.backward(losses.sum() * (scale / b["step_targets"]))
            self.state.window.add(losses, lang, mode)
        norm = None
        if self.cfg.optim.max_grad_norm:
            norm = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.optim.max_grad_norm)
            norm = None if norm is None else float(norm)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return norm

    def loop(self, total: int) -> None:
        st, ga = self.state, self.cfg.batch.grad_accum
        self.model.train()  # from_pretrained returns eval mode (PEFT sets only its own layers to train)
        if st.step == 0 and self.data.eval:  # the untrained model's held-out loss, the baseline of every curve
            st.initial_eval = {k.replace("eval_", "", 1): v for k, v in self.evaluate().items()}
        t0 = time.perf_counter()
        self.pace = Pace(st.step, total)
        while st.step < total:
            if st.index >= len(self.plan.epoch(st.epoch)):
                st.epoch, st.index = st.epoch + 1, 0
                continue
            self.batches.epoch, self.batches.start_step = st.epoch, st.index
            self.loader.set_epoch(st.epoch)
            it = iter(self.loader)
            for first in it:
                micros = [first] + [next(it) for _ in range(ga - 1)]
                norm = self.train_step(micros)
                st.step, st.index = st.step + 1, st.index + 1
                if st.step % self.cfg.log.every == 0 or st.step == total:
                    self.write_record(norm, total, time.perf_counter() - t0)
                    t0 = time.perf_counter()
                elif self.pace.due() and self.acc.is_main_process:  # sparse log records: still a line a minute
                    console.print(self.pace.text(st.step), highlight=False)
                if (self.cfg.save_steps and st.step % self.cfg.save_steps == 0) or st.step == total:
                    st.gather(self.acc)
                    checkpoint.save(self.acc, Path(self.cfg.output_dir), st.step, self.run_info,
                                    self.cfg.save_total_limit)
                    t0 = time.perf_counter()
                if st.step >= total:
                    break

    def write_record(self, norm, total, seconds) -> None:
        st = self.state
        rec = self.record(st.step, st.epoch + st.index / len(self.plan.epoch(st.epoch)), norm, seconds)
        if self._eval_due(st.step, total):
            rec.update(self.evaluate())
        self.log.write(rec)

    def _eval_due(self, step: int, total: int) -> bool:
        every = self.cfg.log.eval_every
        return bool(self.data.eval) and (step == total or (every and step % every == 0))

    def record(self, step, epoch, norm, seconds) -> dict:
        st = self.state
        st.gather(self.acc)
        g = st.window
        tokens = st.tokens if self.acc.is_main_process else 0
        rec = {"step": step, "epoch": round(epoch, 4), **g.summary(), "lr": self.sched.get_last_lr()[0],
               "grad_norm": norm, "tokens": tokens, "tokens_per_s": round(tokens / max(seconds, 1e-9), 2),
               "seconds": round(seconds, 3)}
        if not st.logged:  # the first record of a run carries the truncation/drop counts (and step-0 eval)
            rec["data"] = self.data.stats
            if st.initial_eval:
                rec["initial_eval"] = st.initial_eval
            st.logged = True
        self.last_loss = rec["loss"]
        if self.acc.is_main_process:
            console.print(f"{self.pace.text(step)} | loss {rec['loss']:.4f} " +
                          " ".join(f"{k} {v:.3f}" for k, v in rec["loss_by_language"].items()) +
                          f" | {rec['tokens_per_s']:.0f} tok/s", highlight=False)
        g.reset()
        st.tokens = 0
        return rec

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out loss; every process runs the same number of forwards (sharded engines need them all)."""
        self.model.eval()
        order = sorted(range(len(self.data.eval)), key=lambda i: len(self.data.eval[i].input_ids))
        size, rank, world = self.cfg.batch.size, self.acc.process_index, self.acc.num_processes
        micros = [[[i] for i in order[s:s + size]] for s in range(0, len(order), size)]
        acc = GroupLoss(self.data.languages, self.data.modes)
        for k in range(0, len(micros), world):
            mine = k + rank
            b = collate(micros[min(mine, len(micros) - 1)], self.data.eval, self.pad_id, "pad", self.lang_index,
                        self.mode_index)
            b = {key: (v.to(self.acc.device) if torch.is_tensor(v) else v) for key, v in b.items()}
            out = self.forward(b)
            if mine < len(micros):  # a repeat only keeps the collectives in step; its loss is not counted
                acc.add(*out)
        self.model.train()
        return acc.reduce(self.acc).summary("eval_")
