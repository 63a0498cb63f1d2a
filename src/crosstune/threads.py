"""torch CPU threads, decided in one place: the commands' --threads, training, experiments and lazy model loads.

`0` (or None) means auto: the cores this process may use (its CPU affinity, capped by a cgroup CPU quota) less
the cores other work keeps busy (the 1-minute load average, or the tasks runnable right now when more), at
least 1, shared among the processes of one launch. The decision is taken once per process, before our own
threads add to the load, and said on the screen (`threads: 1 (2 cores, load 2.1: 1 free)`).

Why: OpenMP threads that share a core with other busy work spin at their barriers against it. With both cores of
a 2-core machine held by other processes, the quickstart's training with torch's default (2 threads) ran about
25x slower than idle; with 1 thread it loses only the share the other work takes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

IDLE_LOAD = 0.3  # load below this (per machine) is background noise: a core counts as busy from load 0.3 up


@dataclass(frozen=True)
class Decision:
    threads: int
    why: str  # what the number comes from, for the screen


def decide(requested: int | None, cores: int, load: float, processes: int = 1,
           env_threads: int | None = None) -> Decision:
    """The thread count for one process. `requested` > 0 is taken as it is; 0/None is auto: `cores` usable by
    this process, `load` the busy cores among them (other work), `processes` of this launch on the machine,
    `env_threads` an OMP_NUM_THREADS the user set (a cap)."""
    if requested:
        return Decision(requested, "as set by --threads or the config")
    cores = max(1, cores)
    busy = max(0, math.ceil(load - IDLE_LOAD))
    free = min(cores, max(1, cores - busy))
    n = max(1, free // max(1, processes))
    why = f"{cores} core{'s' if cores != 1 else ''}, load {load:.1f}: {free} free"
    if processes > 1:
        why += f", {processes} processes"
    if env_threads and env_threads < n:
        n, why = env_threads, f"{why}; OMP_NUM_THREADS={env_threads}"
    return Decision(n, why)


def usable_cores() -> int:
    """Cores this process may run on: its affinity set, capped by a cgroup v2/v1 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def _cgroup_quota() -> float | None:
    for path, period_path in (("/sys/fs/cgroup/cpu.max", None),
                              ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(path) as f:
                parts = f.read().split()
            if period_path:
                with open(period_path) as f:
                    parts.append(f.read().strip())
            quota, period = parts[0], parts[1]
            if quota in ("max", "-1"):
                return None
            return int(quota) / int(period)
        except (OSError, ValueError, IndexError, ZeroDivisionError):
            continue
    return None


def busy_cores(cores: int) -> float:
    """Cores of the `cores` this process may use that other work keeps busy: the larger of the 1-minute load
    average and the runnable tasks now (the median of 3 looks, less this process), scaled to our share of the
    machine when we may use only some of its cores (the load is machine-wide)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    looks = []
    for i in range(3):
        try:
            with open("/proc/loadavg") as f:
                looks.append(int(f.read().split()[3].split("/")[0]) - 1)  # "running/total"; one is us
        except (OSError, ValueError, IndexError):
            break
        if i < 2:
            time.sleep(0.02)
    now = sorted(looks)[len(looks) // 2] if looks else 0
    share = min(1.0, cores / (os.cpu_count() or cores))
    return max(load, now) * share


def auto() -> Decision:
    """Measure this machine now and decide (see `decide`)."""
    cores = usable_cores()
    procs = _int_env("LOCAL_WORLD_SIZE") or 1  # set by accelerate / torchrun for each process of a launch
    return decide(0, cores, busy_cores(cores), procs, _int_env("OMP_NUM_THREADS"))


def _int_env(name: str) -> int | None:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


_decided: Decision | None = None


def set_threads(n: int | None) -> Decision:
    """Use `n` torch CPU threads in this process; 0 or None: auto (measured once per process, then kept). The
    first decision, and any change, is said on stderr by the launch's main process."""
    global _decided
    if n:
        d = decide(n, 0, 0.0)
    elif _decided is not None:
        return _decided
    else:
        d = auto()
    import torch

    torch.set_num_threads(d.threads)
    if (_decided is None or d.threads != _decided.threads) and os.environ.get("RANK", "0") == "0":
        from crosstune.console import console

        console.print(f"threads: {d.threads} ({d.why})", highlight=False)
    _decided = d
    return d


def ensure_threads() -> Decision:
    """For a model loaded outside a command that decided: auto, unless this process already decided."""
    return _decided or set_threads(0)
