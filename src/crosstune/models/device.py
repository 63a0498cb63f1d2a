"""Where and in which dtype a local model runs: device choice, dtype choice and the out-of-memory message.

`pick_device("auto")` is the process's GPU when torch sees one (under `accelerate launch`/`torchrun`, the GPU of
this process's LOCAL_RANK), else the CPU; an explicit `cpu`, `cuda`, `cuda:N` or `mps` is checked, not trusted.
`pick_dtype("auto", device)` is bfloat16 on a GPU that supports it, float32 elsewhere (CPU matmuls in bf16 change
greedy outputs and, for log-likelihood, chosen options; ENVIRONMENT.md). `out_of_memory` turns torch's OOM into
one line that names the batch size that failed and the setting to lower.
"""

from __future__ import annotations

import os

import torch

from crosstune.errors import CrosstuneError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(name: str | None = "auto") -> torch.device:
    """The torch device for `name` (`auto`, `cpu`, `cuda`, `cuda:N`, `mps`); a clear error when it is absent."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0) % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CrosstuneError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CrosstuneError(f"device {name!r}: this torch sees no CUDA GPU ({torch.__version__}); "
                                 "use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CrosstuneError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CrosstuneError(f"device {name!r}: MPS is not available here; use --device cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CrosstuneError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return dev


def pick_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """`float32`/`bfloat16`/`float16` as named; `auto`: bfloat16 on a GPU with bf16 support, else float32."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise CrosstuneError(f"dtype {name!r}: expected auto, float32, bfloat16 or float16")
    if name == "float16" and device.type == "cpu":
        raise CrosstuneError("dtype 'float16' on the CPU: most CPU kernels lack float16; use float32 or bfloat16")
    return DTYPES[name]


def model_device(model) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OOM on any device (`torch.OutOfMemoryError`, or a RuntimeError saying so)."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def out_of_memory(what: str, batch: str, setting: str, device: torch.device | str | None = None,
                  resume: str = "results finished so far are kept; rerun the same command to resume") -> CrosstuneError:
    """The one-line error for an OOM: what ran, the batch that failed, and what to set instead."""
    dev = torch.device(device) if device is not None else None
    where = ""
    if dev is not None and dev.type == "cuda" and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(dev)
        where = f" on {torch.cuda.get_device_name(dev)} ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
        torch.cuda.empty_cache()
    return CrosstuneError(f"{what}: out of memory{where} at {batch}; set {setting} ({resume})")
