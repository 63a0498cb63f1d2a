"""Optional native CPU kernel for the decode step's attention (`decode_attention.c`), compiled on first use.

torch's fused attention takes one call per row and reaches about a quarter of a core's read bandwidth on a decode
step's short queries; the C kernel does every row of a layer in one call, reading each key and value once. It is
built with the machine's C compiler (`$CC`, else `cc`, `gcc` or `clang`) into `$CROSSTUNE_CACHE/native/` (one file
per source, compiler and flags: built once, shared by processes) and loaded with ctypes; no torch headers, no
build-time step. Where no compiler works, or `CROSSTUNE_NATIVE=0`, `decode_attention()` is None and the decoder
uses torch's attention (same outputs to float rounding).
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
SOURCE = Path(__file__).with_name("decode_attention.c")
FLAG_SETS = (["-O3", "-march=native"], ["-O3"])  # the second where the compiler knows no -march=native
_ARGS = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 5 + [ctypes.c_float]


def compiler() -> str | None:
    """The C compiler to use: `$CC`, else the first of cc, gcc, clang on PATH."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((p for p in map(shutil.which, ("cc", "gcc", "clang")) if p), None)


@functools.cache
def _library(cc: str | None, where: Path) -> ctypes.CDLL | None:
    if cc is None:
        log.info("no C compiler: the decode step uses torch's attention")
        return None
    source = SOURCE.read_bytes()
    for flags in FLAG_SETS:
        # the CPU's features are part of the key: a cache shared by unlike machines (an NFS home on a cluster)
        # never hands one a library built for instructions it lacks
        key = hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(flags).encode(), _cpu()])).hexdigest()[:16]
        lib = where / f"decode_attention-{key}.so"
        try:
            if not lib.exists():
                where.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=".so", dir=where)
                os.close(fd)
                done = subprocess.run([cc, *flags, "-fPIC", "-shared", str(SOURCE), "-o", tmp, "-lm"],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    os.unlink(tmp)
                    log.info("compiling %s with %s %s failed: %s", SOURCE.name, cc, flags, done.stderr.strip()[:500])
                    continue
                os.replace(tmp, lib)  # atomic: processes building at once each install a complete file
            handle = ctypes.CDLL(str(lib))
        except OSError as exc:  # a read-only cache, a library that does not load
            log.info("native decode attention at %s: %s", lib, exc)
            continue
        fn = handle.crosstune_decode_attention
        fn.restype, fn.argtypes = ctypes.c_int, _ARGS
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
    if os.environ.get("CROSSTUNE_NATIVE", "1") == "0":
        return None
    handle = _library(compiler(), cache_dir() / "native")
    if handle is None:
        return None
    fn = handle.crosstune_decode_attention

    def for_rows(start: torch.Tensor, length: torch.Tensor) -> Callable:
        parts = _split(length.tolist(), torch.get_num_threads())

        def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, scale: float) -> torch.Tensor:
            _, kv_heads, g, d = q.shape
            row = q[0].numel() * q.element_size()  # bytes per row of q and out; start/length entries are 8 bytes

            def run(part: tuple[int, int]) -> int:  # rows [a, b); ctypes lets go of the GIL during the call
                a, b = part
                return fn(q.data_ptr() + a * row, k.data_ptr(), v.data_ptr(), out.data_ptr() + a * row,
                          start.data_ptr() + a * 8, length.data_ptr() + a * 8, b - a, kv_heads, g, d, k.shape[1],
                          scale)
            codes = [run(parts[0])] if len(parts) == 1 else list(_pool(len(parts)).map(run, parts))
            if any(codes):
                raise MemoryError("decode attention: out of memory for its score buffer")
            return out
        return attend
    return for_rows


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
    return ThreadPoolExecutor(workers, thread_name_prefix="crosstune-attention")
