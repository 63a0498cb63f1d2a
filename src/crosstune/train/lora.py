"""PEFT LoRA: check target modules against the model before attaching, then attach; merged export."""

from __future__ import annotations

from pathlib import Path

import torch

from crosstune.console import console
from crosstune.errors import CrosstuneError
from crosstune.train.config import LoraSection
from crosstune.train.dropout import use_lora_dropout


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
    tie = {"ensure_weight_tying": cfg.keep_tied} if cfg.modules_to_save and _tied(model) else {}
    lcfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=present,
                      modules_to_save=cfg.modules_to_save or None, task_type="CAUSAL_LM", **tie)
    model = get_peft_model(model, lcfg)
    if cfg.dropout_impl == "auto" and not torch.cuda.is_available():
        use_lora_dropout(model)
    return model


def _tied(model) -> bool:
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    return out is not None and inp.weight is out.weight


def export(accelerator, loss_mod, tokenizer, out: Path, method: str, merge: bool) -> dict[str, str]:
    """Save the adapter (LoRA) or the model (full) with the tokenizer; optionally a merged HF model folder.

    Under FSDP/DeepSpeed the full state dict is gathered first (a collective: every process calls this)."""
    model = accelerator.unwrap_model(loss_mod).model
    state_dict = None
    if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED"):
        full = accelerator.get_state_dict(loss_mod)
        state_dict = {k.removeprefix("model."): v for k, v in full.items()} if full else None
    if not accelerator.is_main_process:
        return {}
    paths = {}
    target = out / ("adapter" if method == "lora" else "model")
    model.save_pretrained(target, **({"state_dict": state_dict} if state_dict is not None else {}))
    tokenizer.save_pretrained(target)
    paths[target.name] = str(target)
    if merge and method == "lora":
        if state_dict is not None:
            console.print("[yellow]warning:[/] merge: skipped under a sharding engine; merge the saved adapter "
                          "with peft (PeftModel.from_pretrained(...).merge_and_unload())")
            return paths
        merged = model.merge_and_unload()
        merged.save_pretrained(out / "merged")
        tokenizer.save_pretrained(out / "merged")
        paths["merged"] = str(out / "merged")
    return paths
