"""`model.compile`: torch.compile (inductor) of the norms or of whole decoder layers, in place, shapes dynamic.

`norms` compiles every RMSNorm/LayerNorm module: eager RMSNorm (HF's float32 upcast, square, mean, rsqrt, two
multiplies, downcast) is about six elementwise passes forward and more backward over the activations; compiled it
is one fused kernel each way (5x faster on a SmolLM2 batch, ~5 s to compile). `layers` compiles each decoder
layer whole; it breaks its graphs at every LoRA Linear (whose dropout has data-dependent sizes) and compiles for
~50 s. Modules keep their state-dict keys (`nn.Module.compile` wraps the call, not the module). `auto` picks
`norms` on a CPU when inductor can build a C++ kernel here (tried once on a tiny function), else `off`.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from crosstune.console import console
from crosstune.errors import CrosstuneError


def apply_compile(hf, mode: str, device: str) -> str:
    """Compile `hf`'s norms or layers as `mode` says (`auto` resolved here); returns the mode used."""
    if mode == "auto":
        mode = "norms" if device == "cpu" and inductor_works() else "off"
    if mode == "norms":
        compile_norms(hf)
    elif mode == "layers":
        compile_layers(hf)
    return mode


def _raise_limit(n: int) -> None:
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, n)


def compile_norms(hf) -> int:
    """`torch.compile` every normalisation module (class name ending in RMSNorm, or nn.LayerNorm); returns how many."""
    norms = [m for m in hf.modules() if type(m).__name__.endswith("RMSNorm") or isinstance(m, nn.LayerNorm)]
    _raise_limit(8)  # train / eval x grad / no-grad
    for m in norms:
        m.compile(dynamic=True)
    return len(norms)


def compile_layers(hf) -> int:
    """`torch.compile` every decoder layer; the LoRA dropout stays outside the graphs (same RNG stream)."""
    layers = getattr(hf.get_decoder(), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        raise CrosstuneError(f"model.compile: {type(hf).__name__} has no decoder `layers` list to compile; "
                             "set model.compile: off or norms")
    _raise_limit(4 * len(layers))  # train/eval x grad/no-grad per layer
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


@functools.cache
def inductor_works() -> bool:
    """Whether inductor can build and run a CPU kernel here (a C++ compiler and Python headers are needed)."""
    try:
        fn = torch.compile(lambda x: x * 2 + 1, dynamic=False)
        return bool(torch.equal(fn(torch.arange(4.0)), torch.tensor([1.0, 3.0, 5.0, 7.0])))
    except Exception as e:  # noqa: BLE001 - any toolchain failure means "stay eager"
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        console.print(f"[yellow]warning:[/] model.compile auto: torch.compile cannot build kernels here ({first}); "
                      "training runs eagerly (install a C++ compiler to get the compiled norms)")
        return False
