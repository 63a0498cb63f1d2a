"""The training data loader: a deterministic plan of steps, served as a torch DataLoader for `accelerator.prepare`.

A plan (packing.epoch_plan) is a pure function of (seed, epoch): a step holds `grad_accum * world` micro-batches.
The loader yields micro-batches in plan order; accelerate's `BatchSamplerShard` deals them round-robin, so
process r trains on micro-batches r, r + world, ... of every step: the same global batch as one process with
`grad_accum * world` accumulation steps. The data position is (epoch, step index in that epoch); resuming
starts the sampler at that step (a multiple of `world`, so every process keeps its share).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from crosstune.errors import CrosstuneError
from crosstune.train.packing import collate, epoch_plan


class Plan:
    """Deterministic steps per epoch; one epoch's plan is cached."""

    def __init__(self, data, cfg, mode: str, world: int):
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

    def step_targets(self, e: int, s: int) -> int:
        """Target tokens of the whole global batch of step s: the loss is their mean."""
        return max(1, sum(self.data.targets(i) for micro in self.epoch(e)[s] for row in micro for i in row))


class PlanBatches(Sampler):
    """Yields one `[(epoch, step, micro)]` per micro-batch of the current epoch, from `start_step` on."""

    def __init__(self, plan: Plan):
        self.plan, self.epoch, self.start_step = plan, 0, 0

    def __iter__(self):
        steps = self.plan.epoch(self.epoch)
        for s in range(self.start_step, len(steps)):
            for m in range(len(steps[s])):
                yield [(self.epoch, s, m)]

    def __len__(self) -> int:
        return (len(self.plan.epoch(self.epoch)) - self.start_step) * self.plan.micro_per_step


class PlanDataset(Dataset):
    """`(epoch, step, micro)` -> the micro-batch's rows and the target-token count of its global step."""

    def __init__(self, plan: Plan, batches: PlanBatches):
        self.plan, self.batches = plan, batches

    def __getitem__(self, key):
        e, s, m = key
        return self.plan.epoch(e)[s][m], self.plan.step_targets(e, s)

    def __len__(self) -> int:
        return len(self.batches)


def build_loader(plan: Plan, pad_id: int, lang_index: dict, mode_index: dict) -> tuple[DataLoader, PlanBatches]:
    """The loader to prepare, and its sampler: set `.epoch` and `.start_step` before iterating."""
    batches = PlanBatches(plan)
    rows = plan.data.train

    def collate_fn(items):
        (micro, n_targets), = items
        b = collate(micro, rows, pad_id, plan.mode, lang_index, mode_index)
        b["step_targets"] = n_targets
        return b

    # its own generator: a new iterator draws a base seed from it, not from the global stream that drives dropout
    # (a resumed run creates its iterator at another point of that stream than the uninterrupted run)
    loader = DataLoader(PlanDataset(plan, batches), batch_sampler=batches, collate_fn=collate_fn,
                        generator=torch.Generator().manual_seed(0))
    return loader, batches
