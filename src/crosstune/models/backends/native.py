"""Optional native CPU kernels for the decode step, compiled on first use: attention (`decode_attention.c`) and the
step's matrix products (`decode_linear.c`).

torch's fused attention takes one call per row and reaches about a quarter of a core's read bandwidth on a decode
step's short queries; the attention kernel does every row of a layer in one call, reading each key and value once.
oneDNN and MKL run a step's products (a weight times 1-32 columns) at about a third of a core's multiply-add rate;
the product kernel streams each weight once with the columns as vector lanes (0.55-0.75x oneDNN's time per step).
Both are built with the machine's C compiler (`$CC`, else `cc`, `gcc` or `clang`) into one library in
`$CROSSTUNE_CACHE/native/` (one file per source, compiler and flags: built once, shared by processes) and loaded with
ctypes; no torch headers, no build-time step. Where no compiler works, or `CROSSTUNE_NATIVE=0`, `decode_attention()`
and `decode_linear()` are None and the decoder uses torch's attention and products (same outputs to float rounding).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from crosstune.models.loading import cache_dir

log = logging.getLogger(__name__)
SOURCES = [Path(__file__).with_name(n) for n in ("decode_attention.c", "decode_linear.c")]
FLAG_SETS = (["-O3", "-march=native"], ["-O3"])  # the second where the compiler knows no -march=native
_ARGS = {"crosstune_decode_attention": [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 5 + [ctypes.c_float],
         "crosstune_decode_linear": [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 4}
ROWS = 6  # the product kernel's row block: threads split a weight's rows at its multiples (same sums at any count)
MAX_COLUMNS = 32  # wider products go to torch (oneDNN): measured faster than the kernel beyond ~32 columns


def compiler() -> str | None:
    """The C compiler to use: `$CC`, else the first of cc, gcc, clang on PATH."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((p for p in map(shutil.which, ("cc", "gcc", "clang")) if p), None)


@functools.cache
def _library(cc: str | None, where: Path) -> ctypes.CDLL | None:
    if cc is None:
        log.info("no C compiler: the decode step uses torch's attention and products")
        return None
    source = b"\0".join(p.read_bytes() for p in SOURCES)
    for flags in FLAG_SETS:
        # the CPU's features are part of the key: a cache shared by unlike machines (an NFS home on a cluster)
        # never hands one a library built for instructions it lacks
        key = hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(flags).encode(), _cpu()])).hexdigest()[:16]
        lib = where / f"decode-{key}.so"
        try:
            if not lib.exists():
                where.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=".so", dir=where)
                os.close(fd)
                done = subprocess.run([cc, *flags, "-fPIC", "-shared", *map(str, SOURCES), "-o", tmp, "-lm"],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    os.unlink(tmp)
                    log.info("compiling the decode kernels with %s %s failed: %s", cc, flags, done.stderr.strip()[:500])
                    continue
                os.replace(tmp, lib)  # atomic: processes building at once each install a complete file
            handle = ctypes.CDLL(str(lib))
        except OSError as exc:  # a read-only cache, a library that does not load
            log.info("native decode kernels at %s: %s", lib, exc)
            continue
        for name, args in _ARGS.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = ctypes.c_int, args
        return handle
    return None


def _cpu() -> bytes:
    """What identifies this CPU's instruction set: its architecture and (Linux) feature flags."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {platform.processor()} {flags}".encode()


def decode_attention() -> Callable | None:
    """`for_rows(start, length)` -> `attend(q, k, v, out, scale)`: one step's rows, row r attending to pool rows
    [start[r], start[r] + length[r]) (int64 tensors), split over torch's threads once per step; then per layer q and
    out (rows, kv_heads, g, head_dim), k and v the pool's (kv_heads, capacity, head_dim), all float32 contiguous CPU
    tensors. None where the kernel cannot be built or is turned off."""
    handle = _handle()
    if handle is None:
        return None
    fn = handle.crosstune_decode_attention

    def for_rows(start: torch.Tensor, length: torch.Tensor) -> Callable:
        parts = _split(length.tolist(), torch.get_num_threads())

        def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, scale: float) -> torch.Tensor:
            _, kv_heads, g, d = q.shape
            row = q[0].numel() * q.element_size()  # bytes per row of q and out; start/length entries are 8 bytes

            def run(part: tuple[int, int]) -> int:  # rows [a, b)
                a, b = part
                return fn(q.data_ptr() + a * row, k.data_ptr(), v.data_ptr(), out.data_ptr() + a * row,
                          start.data_ptr() + a * 8, length.data_ptr() + a * 8, b - a, kv_heads, g, d, k.shape[1],
                          scale)
            _each(run, parts, "decode attention: out of memory for its score buffer")
            return out
        return attend
    return for_rows


def decode_linear() -> Callable | None:
    """`linear(weight, x)` -> weight @ x.T, (out, rows): weight (out, in) float32 contiguous, x (rows, in) float32 any
    strides (feature-major x.T contiguous is read as is), 1 to `MAX_COLUMNS` rows, CPU tensors; the weight's rows
    split over torch's threads. None where the kernel cannot be built or is turned off."""
    handle = _handle()
    if handle is None:
        return None
    fn = handle.crosstune_decode_linear

    def linear(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        xt = x.t().contiguous()  # feature-major x: its transpose is read in place
        (o, k), n = weight.shape, x.shape[0]
        out = torch.empty(o, n)
        blocks = o // ROWS
        threads = max(1, min(torch.get_num_threads(), blocks))
        cuts = [blocks * i // threads * ROWS for i in range(threads)] + [o]

        def run(i: int) -> int:
            return fn(weight.data_ptr(), xt.data_ptr(), out.data_ptr(), cuts[i], cuts[i + 1], k, n)
        _each(run, range(threads), "decode product: out of memory for its packed columns")
        return out
    return linear


def _each(run: Callable[..., int], parts, failure: str) -> None:
    """run(part) for every part, on torch's threads when there are several (ctypes lets go of the GIL); a kernel's
    non-zero return (out of memory) raises MemoryError(failure)."""
    parts = list(parts)
    codes = [run(parts[0])] if len(parts) == 1 else list(_pool(len(parts)).map(run, parts))
    if any(codes):
        raise MemoryError(failure)


def _handle() -> ctypes.CDLL | None:
    if os.environ.get("CROSSTUNE_NATIVE", "1") == "0":
        return None
    return _library(compiler(), cache_dir() / "native")


def _split(lengths: list[int], threads: int) -> list[tuple[int, int]]:
    """Row ranges of about equal total length, one per thread (at most one per row)."""
    parts, total, a, done = [], sum(lengths), 0, 0
    for b, n in enumerate(lengths, 1):
        done += n
        if done * min(threads, len(lengths)) >= total * (len(parts) + 1) and b < len(lengths):
            parts.append((a, b))
            a = b
    return parts + [(a, len(lengths))]


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="crosstune-native")
