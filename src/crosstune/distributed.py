"""Data parallel for model-bound stages: which process am I, which items are mine, part files and their merge.

One helper for every stage that sends items to a model (eval run/generate/judge, the experiment suites, data
translate/xinstruct). Under `accelerate launch` or `torchrun` (WORLD_SIZE > 1) each process takes every n-th item
of the ordered list of items not yet done and appends its rows to its own part file; process 0 merges them into
the stage's one output, in input order, so the result is the one-process result. A killed run (of any number of
processes) leaves its part files; a rerun with any number of processes reads the main file and every part file,
skips finished keys, and sends no finished item again (the call cache answers a request that was in flight).

Process 0 decides: it reads what is done and tells the others (so every process splits the same list), and at the
end it receives the rows each process wrote in this run through the process group, so processes on machines that
do not share the output folder still merge into process 0's folder (a killed run then resumes from the part files
process 0's machine can see, and from each machine's call cache).

API (a stage's usual flow):

    st = state()                              # .rank .world .local_rank .is_main .barrier() .gather(obj) .sum(d)
    done = read_done(path, key, st)            # {key: row} from path and every path.partK (torn last lines cut)
    todo = [x for x in items if key(x) not in done]
    mine = my_share(todo, st)                  # todo[rank::world]: deterministic, the same on every process
    console.print(share_line(len(todo), "prompts", st))  # "2 processes: 12 prompts each"
    with open_rows(path, st) as out:           # path itself for one process, else path.partK (append)
        out.write(row); out.flush()            # one JSON line per row; flush = fsync: a kill loses no flushed row
    totals = st.sum({"calls": c, "hits": h})   # summed over processes, on every process
    rows = merge_parts(path, key, order, st, out.rows)  # process 0 writes rows in `order`, parts removed

`read_done` gives the rows on process 0 and the keys (values None) on the others; `merge_parts` returns the merged
rows on process 0 and [] on the others. Processes wait for each other for up to CROSSTUNE_DIST_TIMEOUT seconds
(default one day: an idle process of a run with more processes than items waits for the others); a process that
dies makes the launcher stop the others, and the rerun resumes.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Hashable, Iterable, Iterator, Sequence, TypeVar

from crosstune.jsonl import dumps_row, read_rows, write_rows

T = TypeVar("T")


class State:
    """This process's place in the launch: rank, world size, local rank (the GPU to use), is_main; barrier/gather."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, dist=None):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.is_main = rank == 0
        self._dist = dist

    def barrier(self) -> None:
        """Wait until every process gets here (a no-op for one process)."""
        if self._dist is not None:
            self._dist.barrier()

    def gather(self, obj) -> list:
        """Every process's `obj`, in rank order, on every process (picklable objects)."""
        if self._dist is None:
            return [obj]
        out = [None] * self.world
        self._dist.all_gather_object(out, obj)
        return out

    def sum(self, counts: dict[str, int]) -> dict[str, int]:
        """`counts` summed over the processes (model calls, cache hits, tokens), on every process."""
        total: dict[str, int] = {}
        for c in self.gather(counts):
            for k, v in c.items():
                total[k] = total.get(k, 0) + (v or 0)
        return total

    def tag(self) -> str:
        """' (process K)' for a line printed by one of several processes, else ''."""
        return f" (process {self.rank})" if self.world > 1 else ""

    # the names of accelerate's PartialState, for code written against it
    process_index = property(lambda self: self.rank)
    num_processes = property(lambda self: self.world)

    def wait_for_everyone(self) -> None:
        self.barrier()


_STATE: State | None = None


def state() -> State:
    """The process group of an `accelerate launch` / `torchrun` launch (joined once per process), else a one-process
    state. A process group made earlier in the process (training's Accelerator) is reused as it is."""
    global _STATE
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return State()
    if _STATE is None:
        from datetime import timedelta

        import torch.distributed as dist
        from accelerate import PartialState

        if not dist.is_initialized():  # gloo on CPU, NCCL with CUDA (as training's Accelerator)
            import torch

            PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=int(os.environ.get("CROSSTUNE_DIST_TIMEOUT", 86400))))
        _STATE = State(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0") or 0), dist)
    return _STATE


def my_share(todo: Sequence[T], st: State | None = None) -> list[T]:
    """This process's items: every world-th of `todo` from its rank (the same split on every process, since every
    process builds the same ordered `todo` from the same files)."""
    st = st or state()
    return list(todo[st.rank::st.world])


def share_line(n: int, what: str, st: State | None = None) -> str:
    """`2 processes: 12 prompts each` (`12 or 11` when uneven; idle processes said); '' for one process."""
    st = st or state()
    if st.world <= 1:
        return ""
    if n < st.world:
        return (f"{st.world} processes for {n} {what}: {st.world - n} idle (more processes than {what}; they wait "
                "for the others)")
    lo, hi = n // st.world, -(-n // st.world)
    return f"{st.world} processes: {hi if lo == hi else f'{hi} or {lo}'} {what} each"


def part_path(path: str | Path, rank: int) -> Path:
    """Process `rank`'s part file of `path`: `generations.jsonl` -> `generations.part1.jsonl`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.part{rank}{path.suffix}")


def part_files(path: str | Path) -> list[Path]:
    """The part files of `path` that exist (any rank, from this run or a killed one of another size), sorted."""
    path = Path(path)
    return sorted(path.parent.glob(f"{path.stem}.part*{path.suffix}"), key=lambda p: (len(p.name), p.name))


def _read_all(path: Path, key: Callable[[dict], Hashable], repair: bool, what: str) -> dict:
    return {key(r): r for p in (path, *part_files(path)) for r in read_rows(p, repair, what)}


def read_done(path: str | Path, key: Callable[[dict], Hashable], st: State | None = None,
              what: str = "row") -> dict:
    """{key: row} of the rows already written to `path` and its part files, read by process 0 (which first cuts
    torn last lines, so appends start on a clean line); the other processes get the same keys with None values.
    Call it on every process."""
    st = st or state()
    done = _read_all(Path(path), key, True, what) if st.is_main else {}
    if st.world > 1:
        keys = st.gather(list(done) if st.is_main else None)[0]
        if not st.is_main:
            done = dict.fromkeys(keys)
    return done


class RowWriter:
    """Appends rows to one file as canonical JSON lines (`dumps_row`) and keeps the rows written (`rows`)."""

    def __init__(self, f):
        self._f, self.rows = f, []

    def write(self, row: dict) -> None:
        self._f.write(dumps_row(row) + "\n")
        self.rows.append(row)

    def flush(self, sync: bool = True) -> None:
        """Push the written rows to the file (and to the disk with `sync`): a later kill loses none of them."""
        self._f.flush()
        if sync:
            os.fsync(self._f.fileno())


@contextmanager
def open_rows(path: str | Path, st: State | None = None) -> Iterator[RowWriter]:
    """Append to this process's rows file: `path` itself for one process, else its part file."""
    st = st or state()
    target = Path(path) if st.world <= 1 else part_path(path, st.rank)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as f:
        yield RowWriter(f)


def merge_parts(path: str | Path, key: Callable[[dict], Hashable], order: Iterable[Hashable] | None = None,
                st: State | None = None, written: list[dict] | None = None, *, what: str = "row",
                shape: Callable[[dict], dict] | None = None) -> list[dict]:
    """After every process is done (call it on every process): process 0 takes the rows of `path` and of every
    part file it can see, plus the rows each process `written` in this run (sent through the process group),
    writes them whole in the order of the keys in `order` (a key with no row is left out; None keeps file order)
    and returns them; every process removes its own part file. `shape` rewrites each row before writing (e.g. its
    field order). The other processes return []."""
    st = st or state()
    path = Path(path)
    sent = st.gather(written or []) if st.world > 1 else []
    rows: list[dict] = []
    if st.is_main:
        done = _read_all(path, key, False, what)
        for part in sent:
            done.update((key(r), r) for r in part)
        rows = list(done.values()) if order is None else [done[k] for k in order if k in done]
        if shape is not None:
            rows = [shape(r) for r in rows]
        write_rows(path, rows)
        for p in part_files(path):
            p.unlink(missing_ok=True)
    st.barrier()
    if st.world > 1:
        part_path(path, st.rank).unlink(missing_ok=True)
    return rows
