"""The training loop: a lean torch loop on accelerate; model, optimizer, loader and scheduler go through
`accelerator.prepare`, so DDP, FSDP and DeepSpeed launch as accelerate documents.

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
from crosstune.models.device import is_out_of_memory, out_of_memory
from crosstune.errors import CrosstuneError
from crosstune.train import checkpoint
from crosstune.train.config import TrainConfig
from crosstune.train import resume as resume_check
from crosstune.train.dataset import load_data
from crosstune.train.loader import Plan, build_loader
from crosstune.train.lora import export
from crosstune.train.metrics_log import GroupLoss, MetricsLog
from crosstune.train.model import TargetLoss, build_model, build_tokenizer
from crosstune.train.optim import build_optimizer
from crosstune.train.packing import check_isolation
from crosstune.train.runner import Runner, TrainState
from crosstune.models.render import resolve_template
from crosstune.threads import set_threads


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


def _check_engine(accelerator) -> None:
    """An FSDP/DeepSpeed launch that accelerate turned into plain DDP is an error, not a silent fallback."""
    import os

    for env, engine in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
        wanted = os.environ.get(env, "false").lower() == "true"
        if wanted and accelerator.distributed_type.name != engine:
            raise CrosstuneError(
                f"the accelerate config asks for {engine}, but accelerate {_version('accelerate')} runs these "
                f"processes as {accelerator.distributed_type.value}: it enables {engine} only on GPU-type devices "
                "(not on CPU processes); use configs/accelerate/ddp_cpu.yaml on a CPU")


def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)


def train(cfg: TrainConfig, resume: bool = False, allow_changed: list[str] | None = None) -> dict | None:
    """Train; returns the result on the main process (None on the others)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    # cpu=True makes a multi-process launch a gloo group on the CPU (DDP; FSDP where torch supports it).
    # Accumulation runs through accelerate (`accumulate`), so DeepSpeed's engine steps on the right micro-batch;
    # the scheduler is stepped once per optimizer step (our schedule counts global steps).
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=cfg.batch.grad_accum,
                              step_scheduler_with_optimizer=False)
    _check_engine(accelerator)
    set_threads(cfg.threads)  # with more busy threads than cores, OpenMP barriers stall: 1 was ~7x faster here
    out = Path(cfg.output_dir)
    last = _prepare_output(out, resume) if accelerator.is_main_process else checkpoint.latest(out) if resume else None
    run_info = resume_check.fingerprint(cfg, accelerator.num_processes)
    if last is not None:  # strict resume: refuse a changed trajectory before anything slow happens
        resume_check.check(last, run_info, allow_changed or [])
    # tokenizer and data before the (slow) model: bad input fails fast
    tokenizer = build_tokenizer(cfg)
    template = resolve_template(cfg.tokenize.template, tokenizer)
    data = load_data(cfg, tokenizer, template)
    seed_everything(cfg.seed)  # before the model: LoRA init is seeded and equal on all processes
    bf16 = use_bf16(cfg.precision, accelerator.device)
    model = build_model(cfg, verbose=accelerator.is_main_process, bf16=bf16, sharded=checkpoint.sharded(accelerator))
    mode = _batch_mode(cfg, model, len(tokenizer))
    # from here on each process draws from its own stream (dropout masks differ between processes)
    set_seed((cfg.seed + 1) * 1_000_003 + accelerator.process_index)
    plan = Plan(data, cfg, mode, accelerator.num_processes)
    total = plan.total_steps()
    optimizer, scheduler = build_optimizer(model, cfg.optim, total)
    lang_index = {x: i for i, x in enumerate(data.languages)}
    mode_index = {x: i for i, x in enumerate(data.modes)}
    loader, batches = build_loader(plan, tokenizer.pad_token_id, lang_index, mode_index)
    loss_mod, optimizer, loader, scheduler = accelerator.prepare(TargetLoss(model, cfg.model.fused_loss), optimizer,
                                                                 loader, scheduler)
    state = TrainState(GroupLoss(data.languages, data.modes), accelerator.is_main_process)
    accelerator.register_for_checkpointing(state)
    checkpoint.register_hooks(accelerator, model)
    if last is not None:
        checkpoint.load(accelerator, last)
        if accelerator.is_main_process:
            console.print(f"resumed from {last} (step {state.step})")
    log = MetricsLog(out, accelerator.is_main_process, state.step if last else None, cfg.log.tensorboard,
                     cfg.log.wandb, cfg.model_dump(mode="json"))
    if accelerator.is_main_process:
        console.print(f"training {total} steps: {len(data.train)} rows, batch {cfg.batch.size} x accum "
                      f"{cfg.batch.grad_accum} x {accelerator.num_processes} proc "
                      f"({accelerator.distributed_type.value}), mode {mode}, "
                      f"{'bf16 autocast' if bf16 else 'fp32'}, template {template}")
    run = Runner(cfg, accelerator, loss_mod, optimizer, scheduler, loader, batches, data, plan, log, bf16,
                 tokenizer.pad_token_id, state, run_info)
    try:
        run.loop(total)
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        raise out_of_memory("training", f"batch.size {cfg.batch.size} x tokenize.max_length "
                            f"{cfg.tokenize.max_length} (step {state.step + 1})",
                            f"batch.size={max(1, cfg.batch.size // 2)} batch.grad_accum={cfg.batch.grad_accum * 2} "
                            "(the same effective batch) or a smaller tokenize.max_length", accelerator.device,
                            resume="checkpoints saved so far resume with --resume") from None
    result = {"steps": total, "final_loss": run.last_loss, "output_dir": str(out)}
    result.update(export(accelerator, loss_mod, tokenizer, out, cfg, template))
    log.close()
    accelerator.wait_for_everyone()
    return result if accelerator.is_main_process else None
