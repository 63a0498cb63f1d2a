"""`TrainConfig`: composed pydantic sections; unknown keys are errors (see `crosstune.config.StrictModel`).

The keys most often overridden on the command line (`data`, `output_dir`, `max_steps`, `save_steps`, `seed`)
are top-level so `crosstune train cfg.yaml max_steps=10` works.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from crosstune.config import Batch, Count, Seed, StrictModel, Threads


class ModelSection(StrictModel):
    @field_validator("compile", mode="before")
    @classmethod
    def _bool_compile(cls, v):  # the earlier boolean form
        return {True: "layers", False: "off"}.get(v, v) if isinstance(v, bool) else v

    name: str = "default"  # 'default', a HF folder, a .gguf file or a hub id
    trust_remote_code: bool = False
    # auto: `eager` on a CPU when tokenize.max_length <= 512 (the CPU flash-attention backward dominated short
    # sequences: +13-31% tokens/s measured, docs/benchmarks/train.md), else the model's default (sdpa)
    attn_implementation: str = "auto"
    # torch.compile (inductor, dynamic shapes: no recompile per padded length) of
    # norms: the RMSNorm/LayerNorm modules only (eager RMSNorm is ~6 elementwise passes forward and more backward;
    #   compiled: one fused kernel each way, 5x faster; 1.08x tokens/s at 1 thread, neutral at 2; ~5 s compile);
    # layers: each whole decoder layer (graph breaks at every LoRA Linear; slower than norms here, ~50 s compile);
    # auto: norms on a CPU when a C++ compiler works (checked once with a tiny kernel), else off. true = layers.
    compile: Literal["auto", "off", "norms", "layers"] = "auto"
    # a frozen LM head's cross-entropy by vocabulary slices with its gradient made in forward (train/fused_ce.py:
    # no full float32 logits; same loss; the head's part of a step ~2x faster); false: head(hidden).float() + CE
    fused_loss: bool = True


class LoraSection(StrictModel):
    r: int = Field(16, gt=0, le=65536)  # at most the adapted layers' width (checked when the model loads)
    alpha: float = Field(32, gt=0, le=1e6)
    dropout: float = Field(0.05, ge=0, lt=1)
    # how LoRA dropout masks are drawn (same Bernoulli(dropout) masks in distribution either way):
    # auto: on a CPU, only the dropped positions (train/dropout.py: ~3x cheaper masks, +9-26% tokens/s and ~1 GB less
    # peak RSS measured, docs/benchmarks/train.md);
    # torch: PEFT's nn.Dropout (bernoulli_ per element), the draws PEFT itself would make
    dropout_impl: Literal["auto", "torch"] = "auto"
    # on a CPU, each adapted Linear runs as one autograd node (train/fused_lora.py: the same function and
    # parameters as PEFT's lora.Linear, fewer casts and passes; 1.26x tokens/s measured, docs/benchmarks/train.md);
    # false, or dropout_impl: torch, keeps PEFT's own layer
    fused: bool = True
    # dtype of the frozen base weights: auto = bfloat16 when training under bf16 autocast without a sharding engine
    # (activations then stay bf16 between layers: no autocast casts; 1.14x tokens/s, half the base model's memory;
    # the adapter, the optimizer state and a merged export stay float32), else float32
    base_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # CrossIn's list has the typo `p_proj` (so q_proj gets no adapter); we default to the intended list.
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    modules_to_save: list[str] = []  # CrossIn trains `embed_tokens, lm_head` in full
    # modules_to_save on a model whose input and output embeddings are one tied matrix: true keeps them one
    # trained matrix (peft `ensure_weight_tying`); false trains two independent copies (what CrossIn's peft did)
    keep_tied: bool = True


class TokenizeSection(StrictModel):
    template: str = "auto"  # auto (tokenizer's chat template), chat, alpaca, gemma, llama
    loss_on: Literal["response", "last_turn", "all"] = "response"
    max_length: int = Field(512, gt=8, le=1 << 20)
    overflow: Literal["truncate", "drop"] = "truncate"


class BatchSection(StrictModel):
    size: Batch = 4  # examples (pad/flatten) or packed sequences (pack) per micro-batch per process
    grad_accum: Batch = 1
    # pad: length-grouped padded batches (safe with any attention implementation);
    # pack: examples packed into rows of max_length tokens, isolated via position_ids (checked at start-up).
    mode: Literal["pad", "pack"] = "pad"


class OptimSection(StrictModel):
    lr: float = Field(1e-4, gt=0, le=10)
    weight_decay: float = Field(0.01, ge=0, le=10)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    max_grad_norm: float | None = Field(1.0, gt=0, le=1e6)
    # None: AdamW (adamw); or package.module:Object, a torch.optim.Optimizer class or a factory called as
    # Object(param_groups, lr=lr, **optimizer_args) (train/optim.py; importing it runs its code)
    optimizer: str | None = None
    optimizer_args: dict[str, Any] = {}

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: str | None) -> str | None:
        from crosstune.train.optim import OPTIMIZERS

        return v if v is None else OPTIMIZERS.check(v)

    @model_validator(mode="after")
    def _optimizer_args(self):
        if self.optimizer_args:  # checked against the optimizer's signature now, not after the model loads
            from crosstune.train.optim import check_optimizer_args

            check_optimizer_args(self)
        return self


class LogSection(StrictModel):
    every: int = Field(1, gt=0, le=10**9)  # log every N optimizer steps
    eval_every: Count = 0  # 0: only at the end (when eval_data is set)
    tensorboard: bool = True  # used when installed
    wandb: bool = False  # opt-in; reads WANDB_* from the environment


class TrainConfig(StrictModel):
    data: str
    eval_data: str | None = None
    max_rows: Count = 0  # > 0: train on a seeded sample of this many rows of `data` (big mixtures)
    eval_rows: Count = 0  # without eval_data: hold out this many rows of `data` (seeded) for eval
    output_dir: str
    method: Literal["lora", "full"] = "lora"
    model: ModelSection = ModelSection()
    lora: LoraSection = LoraSection()
    tokenize: TokenizeSection = TokenizeSection()
    batch: BatchSection = BatchSection()
    optim: OptimSection = OptimSection()
    log: LogSection = LogSection()
    precision: Literal["auto", "fp32", "bf16_autocast"] = "auto"  # auto: bf16 autocast when the CPU has bf16
    epochs: float = Field(1.0, gt=0, le=1e6)
    max_steps: Count = 0  # > 0 overrides epochs
    save_steps: Count = 0  # 0: only the final checkpoint
    save_total_limit: int = Field(2, ge=1, le=10**6)
    seed: Seed = 42
    threads: Threads = 0  # torch CPU threads; 0 = auto: the cores free at start (crosstune.threads)
    merge: bool = False  # also export a merged HF model folder (LoRA)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.method == "full" and self.lora.modules_to_save:
            raise ValueError("lora.modules_to_save only applies to method=lora")
        return self


def with_data_paths(cfg: TrainConfig, data_root: str | None = None) -> TrainConfig:
    """`data` and `eval_data` found by the data-root rule (crosstune.paths: `data_root`/`$CROSSTUNE_DATA`, the
    config's folder, the working directory); a path found in the working directory keeps its spelling, so
    configs, resumes and hashes that worked before read the same."""
    from crosstune.paths import Lookup

    lookup = Lookup(cfg._source, data_root)
    update = {name: lookup.spelled(getattr(cfg, name), name) for name in ("data", "eval_data")
              if getattr(cfg, name) is not None}
    out = cfg.model_copy(update=update)
    out._source = cfg._source
    return out
