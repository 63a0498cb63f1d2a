"""Language ID in worker processes: lists of texts go out over a pipe, their detections come back.

The language-ID filter of a build sends the new texts of the batch it is gathering to a `DetectorPool` while the
main process keeps generating and filtering rows, so detection (pycld2, about a third of a CrossIn build's CPU)
runs on a second core. Only texts travel; the memo, counters and verdicts stay in the main process, so a build
gives the same bytes with any number of workers.

A worker is a fresh `python` running `_worker_main` (POSIX; elsewhere a build runs in one process), started with
`subprocess`, not `multiprocessing`: the `spawn`/`forkserver` start methods re-run the caller's main script in the
child, so a user's script without an `if __name__ == "__main__":` guard would start its own build again, and
`fork` copies a process that may hold other threads' locks. Each worker holds at most `DetectorPool.DEPTH` jobs,
and the main process talks to it over a plain pipe (`multiprocessing.connection.Connection` on two fds, the pipe
widened to hold whole jobs) with no helper threads:
`concurrent.futures.ProcessPoolExecutor` was tried first and was slower than no worker at all, because its
feeder and manager threads need the GIL from the busy main loop for every job (up to the 5 ms switch interval
each way), which starved the worker. A thread would be simpler still but hits the same wall: pycld2 releases the
GIL only inside the C detector, and its Python wrapper (letters check, control-character scrub, re-ranking) and
every call re-acquire it (docs/benchmarks/data_build.md, worker pass).
"""

from __future__ import annotations

import json
import os
import pickle
import select
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

from crosstune.data.langid import get_detector

PIPE_BYTES = 1 << 20
SUPPORTED = os.name == "posix" and hasattr(select, "poll")  # pass_fds and poll; elsewhere builds run in one process


def default_workers() -> int:
    """Processes a build uses by default: 2 (the main process and one language-ID worker) when at least 2 of
    the cores this process may use are free as it starts (`crosstune.threads`: affinity and cgroup quota, less
    the cores other work keeps busy), else 1 (everything in process; also on non-POSIX systems). A worker that
    would share a busy core only adds its own CPU time (pickling texts, two processes taking turns)."""
    if not SUPPORTED:
        return 1
    from crosstune import threads

    cores = threads.usable_cores()
    return min(2, threads.decide(0, cores, threads.busy_cores(cores)).threads)


def _widen(fd: int) -> None:
    """Let the pipe hold a whole job (Linux): a send then returns at once instead of waiting, 64 KB at a time,
    for the worker to read."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


def _peak_rss_kb() -> int:
    """This process's peak resident memory in KB: VmHWM (Linux; `ru_maxrss` would include the memory of the
    process that started this one, from before `exec`), else `ru_maxrss`, else 0."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except ImportError:
        return 0


def _stat(pid: int) -> tuple[str, int]:
    """(state, CPU it last ran on) of a process, from `/proc/<pid>/stat` (fields 3 and 39)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return rest[0], int(rest[36])


def _serve(conn_in, conn_out, backend: str, languages: list[str] | None) -> None:
    """A worker: detect each list of texts received, send back (detections, CPU seconds); on None, send back
    its peak RSS in KB and stop (also on EOF)."""
    detector = get_detector(backend, languages)
    while True:
        try:
            texts = pickle.loads(conn_in.recv_bytes())
        except EOFError:  # the main process is gone
            break
        if texts is None:  # the last word: this worker's peak memory
            conn_out.send_bytes(pickle.dumps(_peak_rss_kb()))
            break
        c = time.process_time()
        found = detector.detect_many(texts)
        conn_out.send_bytes(pickle.dumps((found, time.process_time() - c), pickle.HIGHEST_PROTOCOL))


class Job:
    """Texts handed to a worker; `found` holds their detections once collected (None if the worker died)."""

    __slots__ = ("worker", "found", "done")

    def __init__(self, worker):
        self.worker, self.found, self.done = worker, None, False


class _Worker:
    __slots__ = ("proc", "out", "back", "jobs")

    def __init__(self, proc, out: Connection, back: Connection):
        self.proc, self.out, self.back = proc, out, back
        self.jobs: deque[Job] = deque()  # in flight, in the order sent (results come back in that order)


class DetectorPool:
    """`processes` worker processes, each with its own detector (`get_detector(backend, languages)`).

    `idle()` gives a worker with fewer than `DEPTH` jobs in flight (or None: the caller keeps its texts for
    later, or detects them itself), `submit(worker, texts)` hands it texts, `done(job)` says without waiting
    whether the detections are back, `result(job)` waits for them."""

    DEPTH = 2  # jobs in flight per worker: the next one is already in the pipe when a worker finishes one

    def __init__(self, backend: str, languages: list[str] | None, processes: int = 1):
        self._workers: list[_Worker] = []
        self._poller = select.poll()  # one poll object for the result pipes: no selector built per check
        root = str(Path(__file__).resolve().parents[2])  # where this crosstune was imported from
        for _ in range(processes):
            to_r, to_w = os.pipe()  # main -> worker
            from_r, from_w = os.pipe()  # worker -> main
            _widen(to_w)
            try:
                proc = subprocess.Popen([sys.executable, "-c", _BOOT, root, str(to_r), str(from_w), backend,
                                         json.dumps(languages)], pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL)
            finally:
                os.close(to_r)
                os.close(from_w)
            self._workers.append(_Worker(proc, Connection(to_w, readable=False), Connection(from_r, writable=False)))
            self._poller.register(from_r, select.POLLIN)
        self.cpu_seconds = 0.0  # detector CPU time spent in the workers (results collected so far)
        self.texts = 0  # texts detected in the workers
        self.peak_rss_kb = 0  # the largest worker's peak resident memory (known once closed)

    def _poll(self) -> None:
        """Collect the results that are back (one per worker and call), without waiting."""
        busy = [w for w in self._workers if w.jobs]
        if busy:
            ready = {fd for fd, _ in self._poller.poll(0)}
            for w in busy:
                if w.back.fileno() in ready:
                    self._collect(w)

    def idle(self) -> _Worker | None:
        self._poll()
        best = min(self._workers, key=lambda w: len(w.jobs), default=None)
        return best if best is not None and len(best.jobs) < self.DEPTH else None

    def submit(self, w: _Worker, texts: list[str]) -> Job:
        job = Job(w)
        try:
            w.out.send_bytes(pickle.dumps(texts, pickle.HIGHEST_PROTOCOL))
        except OSError:  # the worker died: `result` gives None, the caller detects these texts itself
            job.done = True
            self._drop(w)
            return job
        w.jobs.append(job)
        self.texts += len(texts)
        return job

    def _collect(self, w: _Worker) -> None:
        """Read the result of `w`'s oldest job in flight (waits for it)."""
        try:
            found, cpu = pickle.loads(w.back.recv_bytes())
        except (EOFError, OSError):  # the worker died (killed?): its jobs come back as None
            for job in w.jobs:
                job.done = True
            w.jobs.clear()
            self._drop(w)
            return
        job = w.jobs.popleft()
        job.found, job.done = found, True
        self.cpu_seconds += cpu

    def _drop(self, w: _Worker) -> None:
        if w in self._workers:
            self._workers.remove(w)
            self._poller.unregister(w.back.fileno())

    def sharing(self) -> bool | None:
        """Whether a busy worker is on this process's CPU right now (Linux, `/proc/<pid>/stat`): True when it is
        running or waiting to run there, False when it runs elsewhere, None when no worker is busy or this
        cannot be read."""
        try:
            mine = _stat(os.getpid())[1]
            for w in self._workers:
                if w.jobs:
                    state, cpu = _stat(w.proc.pid)
                    if state == "R":
                        return cpu == mine
        except (OSError, ValueError, IndexError):
            pass
        return None

    def done(self, job: Job) -> bool:
        if not job.done:
            self._poll()
        return job.done

    def result(self, job: Job) -> list[tuple[str | None, float]] | None:
        """The detections of `job`'s texts, in order; None if its worker died (detect them yourself)."""
        while not job.done:
            self._collect(job.worker)
        return job.found

    def close(self) -> None:
        """Stop the workers and wait for them to exit (their CPU time then shows in RUSAGE_CHILDREN)."""
        for w in list(self._workers):
            try:
                while w.jobs:
                    self._collect(w)
                w.out.send_bytes(pickle.dumps(None))
                self.peak_rss_kb = max(self.peak_rss_kb, pickle.loads(w.back.recv_bytes()))
            except (OSError, EOFError):  # the worker is gone already
                pass
            w.out.close()
            w.back.close()
            try:
                w.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        self._workers = []


# A worker's start: the same crosstune as this process (its folder is put first on `sys.path` only when it is not
# on the path already, e.g. a source checkout, so an installed copy never shadows the standard library).
_BOOT = ("import sys; r = sys.argv[1]; r in sys.path or sys.path.insert(0, r); "
         "from crosstune.data.langid_pool import _worker_main; _worker_main(sys.argv[2:])")


def _worker_main(argv: list[str]) -> None:
    _serve(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False), argv[2],
           json.loads(argv[3]))
