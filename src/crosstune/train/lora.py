"""PEFT LoRA: check target modules against the model before attaching, then attach; merged export."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.models.template_record import record_template
from crosstune.train.config import LoraSection
from crosstune.train.dropout import use_lora_dropout
from crosstune.train.fused_lora import FusedLoraLinear


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def check_targets(model, targets: list[str], field: str) -> None:
    """Error when no target matches any module; warn for each target that matches nothing (CrossIn's `p_proj`)."""
    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in targets if not any(_matches(n, t) for n in names)]
    if not missing:
        return
    leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if n and not list(m.children())})
    hint = f"module names in this model: {', '.join(leaves)}"
    if len(missing) == len(targets):
        raise CrosstuneError(f"{field} {targets}: no module of the model matches; {hint}")
    console.print(f"[yellow]warning:[/] {field}: {missing} match no module and get no adapter ({hint})")


def attach_lora(model, cfg: LoraSection):
    from peft import LoraConfig, get_peft_model

    check_targets(model, cfg.target_modules, "lora.target_modules")
    if cfg.modules_to_save:
        check_targets(model, cfg.modules_to_save, "lora.modules_to_save")
    present = [t for t in cfg.target_modules if any(_matches(n, t) for n, _ in model.named_modules())]
    _check_rank(model, present, cfg.r)
    tie = {"ensure_weight_tying": cfg.keep_tied} if cfg.modules_to_save and _tied(model) else {}
    lcfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=present,
                      modules_to_save=cfg.modules_to_save or None, task_type="CAUSAL_LM", **tie)
    cpu = not torch.cuda.is_available()
    if cfg.fused and cfg.dropout_impl == "auto" and cpu:
        lcfg._register_custom_module({nn.Linear: FusedLoraLinear})  # PEFT's documented hook for LoRA layer types
    model = get_peft_model(model, lcfg)
    if cfg.dropout_impl == "auto" and cpu:
        use_lora_dropout(model)
    return model


def _check_rank(model, targets: list[str], r: int) -> None:
    """A LoRA update B @ A has rank at most min(in, out) of its layer: a larger r only allocates (r: 1e12 would
    ask the allocator for terabytes), so it is refused."""
    widths = [min(m.in_features, m.out_features) for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and any(_matches(n, t) for t in targets)]
    if widths and r > max(widths):
        raise CrosstuneError(f"lora.r {r}: larger than any adapted layer can use (the widest has rank "
                             f"{max(widths)}: min(in, out)); use at most {max(widths)}")


def _sorted_module_sets(model) -> None:
    """PEFT keeps target_modules as a set, so adapter_config.json would list them in hash order (another order
    each run); a sorted list names the same modules, the same bytes every time."""
    for pcfg in getattr(model, "peft_config", {}).values():
        for key in ("target_modules", "modules_to_save"):
            value = getattr(pcfg, key, None)
            if isinstance(value, (set, frozenset)):
                setattr(pcfg, key, sorted(value))


def cast_frozen(model, dtype: torch.dtype) -> int:
    """Store every frozen parameter in `dtype` (the adapter and other trainable weights keep theirs); returns how
    many parameters changed."""
    n = 0
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
            n += 1
    return n


def _tied(model) -> bool:
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    return out is not None and inp.weight is out.weight


def export(accelerator, loss_mod, tokenizer, out: Path, cfg, template: str = "chat") -> dict[str, str]:
    """Save the adapter (LoRA) or the model (full) with the tokenizer; optionally a merged HF model folder. Each
    folder records the training template (models/template_record.py), so `--template auto` evaluates with it.

    Under FSDP/DeepSpeed the full state dict is gathered first (a collective: every process calls this).
    A merged export always starts from the float32 base weights, also when training kept them in bfloat16."""
    method, merge = cfg.method, cfg.merge
    model = accelerator.unwrap_model(loss_mod).model
    state_dict = None
    if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED"):
        full = accelerator.get_state_dict(loss_mod)
        state_dict = {k.removeprefix("model."): v for k, v in full.items()} if full else None
    if not accelerator.is_main_process:
        return {}
    paths = {}
    target = out / ("adapter" if method == "lora" else "model")
    _sorted_module_sets(model)
    model.save_pretrained(target, **({"state_dict": state_dict} if state_dict is not None else {}))
    tokenizer.save_pretrained(target)
    record_template(target, template, tokenizer)
    paths[target.name] = str(target)
    if merge and method == "lora":
        if state_dict is not None:
            console.print("[yellow]warning:[/] merge: skipped under a sharding engine; merge the saved adapter "
                          "with peft (PeftModel.from_pretrained(...).merge_and_unload())")
            return paths
        merged = _float32_base(model, cfg, target).merge_and_unload()
        merged.save_pretrained(out / "merged")
        tokenizer.save_pretrained(out / "merged")
        record_template(out / "merged", template, tokenizer)
        paths["merged"] = str(out / "merged")
    return paths


def _float32_base(model, cfg, adapter_dir: Path):
    """`model` itself when its frozen weights are float32, else the float32 base with the saved adapter loaded."""
    if all(p.dtype == torch.float32 for p in model.parameters() if p.is_floating_point()):
        return model
    from peft import PeftModel

    from crosstune.models.loading import load_model

    base = load_model(cfg.model.name, dtype="float32", trust_remote_code=cfg.model.trust_remote_code)
    return PeftModel.from_pretrained(base, adapter_dir)
