"""Load tokenizer + model for training, and the loss module that only computes logits where there is a target."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.models.loading import load_model, load_tokenizer
from crosstune.train.compile import apply_compile
from crosstune.train.config import TrainConfig
from crosstune.train.fused_ce import head_cross_entropy
from crosstune.train.lora import attach_lora, cast_frozen


def build_tokenizer(cfg: TrainConfig):
    return load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code)


def build_model(cfg: TrainConfig, verbose: bool = True, bf16: bool = False, sharded: bool = False):
    """The model to train; `bf16`: steps run under bf16 autocast; `sharded`: under FSDP/DeepSpeed."""
    model = load_model(cfg.model.name, dtype="float32", trust_remote_code=cfg.model.trust_remote_code)
    model.config.use_cache = False
    attn = attention_for(cfg)
    if attn:
        model.set_attn_implementation(attn)
    frozen = frozen_dtype(cfg, bf16, sharded)
    if cfg.method == "lora":
        model = attach_lora(model, cfg.lora)
        if frozen is not None:
            cast_frozen(model, frozen)
    compiled = apply_compile(_hf(model), cfg.model.compile, "cuda" if torch.cuda.is_available() else "cpu")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if verbose:
        console.print(f"model: {type(_hf(model)).__name__}, {cfg.method}, trainable {trainable:,} of {total:,} params, "
                      f"attention {_hf(model).config._attn_implementation}"
                      + (f", frozen weights {str(frozen).removeprefix('torch.')}" if frozen is not None else "")
                      + (f", compiled {compiled}" if compiled != "off" else ""))
    return model


def frozen_dtype(cfg: TrainConfig, bf16: bool, sharded: bool) -> torch.dtype | None:
    """The dtype to store the frozen base weights in (LoRA), or None to keep float32 (`lora.base_dtype`)."""
    name = cfg.lora.base_dtype
    if cfg.method != "lora" or name == "float32" or (name == "auto" and (not bf16 or sharded)):
        return None
    if not bf16:
        raise CrosstuneError("lora.base_dtype: bfloat16 needs bf16 autocast (precision: bf16_autocast, or auto on a "
                             "CPU/GPU with bf16); set lora.base_dtype: float32 or auto")
    return torch.bfloat16


def attention_for(cfg: TrainConfig) -> str | None:
    """The attention implementation to set, or None to keep the model's default."""
    name = cfg.model.attn_implementation
    if name != "auto":
        return name
    return "eager" if not torch.cuda.is_available() and cfg.tokenize.max_length <= 512 else None


def _hf(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class TargetLoss(nn.Module):
    """Per-token cross-entropy on the positions that have a target.

    The LM head runs only on those positions: on a 49k vocabulary the head and its fp32 softmax are a large part
    of a small model's step, and prompt/padding positions never need them. Wrapping this (not the LM) in DDP keeps
    the gradient sync hooks on the path that is actually called.
    """

    def __init__(self, model, fused: bool = True):
        super().__init__()
        self.model = model
        hf = _hf(model)
        self.cap = getattr(hf.config, "final_logit_softcapping", None)
        self.fused = fused

    def forward(self, input_ids, position_ids, attention_mask, targets):
        hf = _hf(self.model)
        hidden = hf.get_decoder()(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                                  use_cache=False).last_hidden_state
        sel = targets != -100
        head = hf.get_output_embeddings()
        if self.fused and not self.cap and type(head) is nn.Linear and head.bias is None \
                and not head.weight.requires_grad:
            return head_cross_entropy(hidden[sel], head.weight, targets[sel])
        logits = head(hidden[sel]).float()
        if self.cap:
            logits = torch.tanh(logits / self.cap) * self.cap
        return F.cross_entropy(logits, targets[sel], reduction="none")
