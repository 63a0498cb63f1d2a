"""Language-ID filter: each checked side must be detected as its declared language.

Texts are detected once: a text-keyed front cache holds the results of recent texts; when the texts it holds pass
`FRONT_CHARS` characters it is cleared, and those detected since the last clear move to a memo keyed by a 128-bit
digest of the text (`DigestMap`, about 25 bytes per distinct text however long), where later batches look up the
texts the front does not have. Until the first clear no text is digested at all. CrossIn reuses each source text
across modes. With `workers > 1` (pycld2), the texts new to the front are sent in chunks to a worker process as
the batch is gathered (`feed`), and collected in order in `prepare`; the memo, counters and verdicts stay here, so
the result is the same with any number of workers. Detections below `min_confidence`, or with no answer (numbers,
code, very short text), count as undetermined and are kept unless `drop_undetermined`. The agreement rate per side
(agree / (agree + mismatch)) goes to the manifest.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Literal

from crosstune.config import Fraction, StrictModel
from crosstune.data.blocks import BatchFilter, Row
from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.langid_pool import SUPPORTED as WORKERS_SUPPORTED
from crosstune.data.langid_pool import DetectorPool
from crosstune.data.digests import DigestMap
from crosstune.data.digests import digest as _digest
from crosstune.languages import normalize

Side = Literal["user", "assistant"]
OUTCOMES = ("agree", "mismatch", "undetermined")
AGREE, MISMATCH, UNDETERMINED = range(3)


class LangIdConfig(StrictModel):
    backend: Literal["pycld2", "lingua"] = "pycld2"
    sides: list[Side] = ["user", "assistant"]
    min_confidence: Fraction = 0.0
    restrict: bool = True  # candidates = the recipe's languages (lingua restricts, pycld2 re-ranks)
    accept: dict[str, list[str]] = {}  # declared -> also accepted, e.g. {ms: [id]}
    drop_undetermined: bool = False


class _Chunk:
    """Texts new to the front, in order: their digests and memo codes (after an eviction), the ones to detect,
    and the worker's job detecting them (None: not handed out, detected in `prepare`)."""

    __slots__ = ("texts", "keys", "codes", "todo", "job", "queued")

    def __init__(self, texts: list[str]):
        self.texts = self.todo = texts
        self.keys = self.codes = self.job = None
        self.queued = False


class LangIdFilter(BatchFilter):
    name = "langid"

    def __init__(self, cfg: LangIdConfig, languages: list[str], workers: int = 1):
        super().__init__()
        self.cfg = cfg
        candidates = languages if cfg.restrict and len(languages) > 1 else None
        self.detector = get_detector(cfg.backend, candidates)
        # pycld2 detects one text per call: worth a second process. lingua already detects a batch on all cores.
        parallel = workers > 1 and cfg.backend == "pycld2" and WORKERS_SUPPORTED
        self._pool_args = (cfg.backend, candidates, workers - 1) if parallel else None
        self._pool: DetectorPool | None = None  # started with the first batch
        self.memo = DigestMap()  # digest of a text evicted from the front -> index into `results`
        self.results: list[tuple[str | None, float]] = []  # each distinct (tag, confidence) once
        self._codes: dict[tuple, int] = {}
        self.front: dict[str, tuple[str | None, float]] = {}  # recent texts -> detection (bounded)
        self.fresh: dict[str, int] = {}  # front texts detected since the last eviction -> result code
        self._front_chars = 0
        # the batch being gathered: its texts new to the front (they hold a None placeholder there until the
        # batch is prepared), the ones not yet in a chunk, its chunks; then the sealed batches, oldest first
        self._new: list[str] = []
        self._chunk: list[str] = []
        self._jobs: list[_Chunk] = []
        self._sealed: deque[tuple[list[str], list[_Chunk]]] = deque()
        self._queue: deque[_Chunk] = deque()  # chunks waiting for a worker, oldest first
        self._fed = 0
        self._paused = 0  # batches left whose chunks are detected here (see `_steer`)
        self._looks: deque[bool] = deque()
        self.worker_pauses = 0
        self.seconds = 0.0  # time the build spent on language ID (detecting, or waiting for the workers)
        self.worker_seconds = 0.0  # detector CPU time in the worker processes (known once closed)
        self.worker_texts = 0  # texts detected there
        self.worker_rss_mb = 0.0  # the largest worker's peak resident memory
        self.sides = set(cfg.sides)
        self.min_confidence = cfg.min_confidence
        self.outcomes = {side: [0, 0, 0] for side in dict.fromkeys(cfg.sides)}  # side -> counts per OUTCOMES
        self.accept = {normalize(k): {normalize(x) for x in v} for k, v in cfg.accept.items()}

    FRONT_CHARS = 32_000_000  # the front cache is cleared when the texts it holds pass this many characters
    SEND = 512  # texts per chunk handed to a worker

    @property
    def overlaps(self) -> bool:
        """With workers, later batches may be gathered while this one is detected (see `seal`)."""
        return self._pool_args is not None

    def feed(self, row: Row) -> None:
        """Note the row's texts that need detection as it joins the batch; with workers, every `SEND` of them
        go to a worker now, so they are detected while the rest of the rows are gathered."""
        if not self._fed:  # the first row of a batch: the front is as `prepare` would find it
            if self._front_chars > self.FRONT_CHARS:
                if self._sealed:
                    raise RuntimeError("langid: front eviction due while a batch is in flight")
                self._evict()
            if self._pool is None and self._pool_args is not None:
                self._pool = DetectorPool(*self._pool_args)
        self._fed += 1
        front, sides, chunk = self.front, self.sides, self._chunk
        for side, t, _ in row.checks:
            if t not in front and side in sides:
                front[t] = None  # detected in `prepare`; until then, not new again
                chunk.append(t)
        if self._pool is not None and len(chunk) >= self.SEND:
            self._close_chunk()

    def _close_chunk(self) -> None:
        """The texts gathered so far become a chunk: looked up in the memo (after an eviction), the rest queued
        for a worker (or detected in `prepare` when there is none)."""
        texts = self._chunk
        self._new += texts
        self._chunk = []
        job = _Chunk(texts)
        if len(self.memo):  # the front was cleared before: texts seen then are found by digest
            job.keys = [_digest(t) for t in texts]
            job.codes = self.memo.get_many(job.keys)
            job.todo = [t for t, c in zip(texts, job.codes) if c is None]
        self._jobs.append(job)
        if self._pool is not None and job.todo and not self._paused:
            job.queued = True
            self._queue.append(job)
            self._pump()

    def _pump(self) -> None:
        """Hand queued chunks, oldest first, to workers with room."""
        queue, pool = self._queue, self._pool
        while queue:
            worker = pool.idle()
            if worker is None:
                return
            job = queue.popleft()
            job.queued = False
            job.job = pool.submit(worker, job.todo)

    def seal(self, batch: list[Row]) -> bool:
        """`batch` is complete (every row fed): its last texts are queued for a worker. True when later batches
        may be gathered before this one is prepared: no front eviction is due before the next batch."""
        if self._fed != len(batch):
            raise RuntimeError(f"langid: {self._fed} rows fed for a batch of {len(batch)}")
        if self._chunk:
            self._close_chunk()
        self._front_chars += sum(map(len, self._new))
        self._sealed.append((self._new, self._jobs))
        self._new, self._jobs, self._fed = [], [], 0
        if self._pool is not None:
            self._steer()
        return self._front_chars <= self.FRONT_CHARS

    SAMPLES, SHARED, PAUSE = 8, 6, 64

    def _steer(self) -> None:
        """Where the next batches' texts are detected (never what is detected). Once per batch, look whether a
        busy worker runs on this process's CPU: if it did in `SHARED` of the last `SAMPLES` looks, the two
        processes share one core (the other core is busy with something else; Linux also shares CPU time fairly
        between sessions, so a busy other session leaves this one a single core) and the worker only adds its
        cost, so chunks stay here for `PAUSE` batches, as with `workers=1`, then the worker is tried again; each
        further pause is twice as long."""
        if self._paused:
            self._paused -= 1
            return
        shared = self._pool.sharing()
        if shared is None:
            return
        looks = self._looks
        looks.append(shared)
        if len(looks) > self.SAMPLES:
            looks.popleft()
        if len(looks) == self.SAMPLES and sum(looks) >= self.SHARED:
            self._paused = self.PAUSE << min(self.worker_pauses, 10)
            self.worker_pauses += 1
            looks.clear()

    def ready(self) -> bool:
        """The oldest sealed batch can be prepared without waiting for a worker."""
        if self._pool is None or not self._sealed:
            return True
        self._pump()
        for job in self._sealed[0][1]:
            if job.queued or (job.job is not None and not self._pool.done(job.job)):
                return False
        return True

    def _detect_here(self, texts: list[str]) -> list:
        if not texts:
            return []
        t0 = time.perf_counter()
        found = self.detector.detect_many(texts)
        self.seconds += time.perf_counter() - t0
        return found

    def prepare(self, batch: list[Row]) -> None:
        """Detections of the batch's new texts into the front: collected from the workers, or detected here
        (chunks no worker has taken yet). Batches are prepared in the order they were sealed."""
        if not self._sealed:  # not sealed by the caller (no read-ahead): seal it now
            if not self._fed:
                for row in batch:
                    self.feed(row)
            self.seal(batch)
        _, jobs = self._sealed.popleft()
        front, results = self.front, self.results
        for job in jobs:
            todo = job.todo
            if job.job is not None:
                t0 = time.perf_counter()
                found = self._pool.result(job.job)
                self.seconds += time.perf_counter() - t0
                if found is None:  # the worker died: detect here
                    found = self._detect_here(todo)
            else:
                if job.queued:  # no worker took it yet
                    job.queued = False
                    self._queue.remove(job)
                found = self._detect_here(todo)
            found = self._record(todo, found)
            if job.keys is None:  # nothing was evicted yet: each text was detected
                codes = found
            else:
                it = iter(found)
                codes = [next(it) if c is None else c for c in job.codes]
            for t, c in zip(job.texts, codes):
                front[t] = results[c]
        if self._queue:
            self._pump()

    def _record(self, texts: list[str], found: list) -> list[int]:
        """Result codes of newly detected `texts`, remembered in `fresh` until the next eviction."""
        if texts:
            self.stats["texts_detected"] += len(texts)
        codes, fresh, results, known = [], self.fresh, self.results, self._codes
        for t, res in zip(texts, found):
            code = known.get(res)
            if code is None:
                code = known[res] = len(results)
                results.append(res)
            fresh[t] = code
            codes.append(code)
        return codes

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self.worker_seconds, self.worker_texts = self._pool.cpu_seconds, self._pool.texts
            self.worker_rss_mb = self._pool.peak_rss_kb / 1024
            self._pool = None

    def _evict(self) -> None:
        """Clear the front; the texts detected since the last eviction move to the digest memo."""
        put = self.memo.put
        for t, code in self.fresh.items():
            put(_digest(t), code)
        self.fresh = {}
        self.front.clear()
        self._front_chars = 0

    def _agrees(self, detected: str, declared: str) -> bool:
        return same_base_language(detected, declared) or detected in self.accept.get(declared, ())

    def check(self, row: Row) -> tuple[str, str] | None:
        verdict = None
        outcomes, front, min_confidence = self.outcomes, self.front, self.min_confidence
        for side, text, declared in row.checks:
            counts = outcomes.get(side)
            if counts is None:  # a side this filter does not check
                continue
            tag, conf = front[text]
            if tag is None or conf < min_confidence:
                counts[UNDETERMINED] += 1
                if self.cfg.drop_undetermined and verdict is None:
                    verdict = ("langid_undetermined", f"{side}: declared {declared}, no reliable detection")
            elif tag == declared or self._agrees(tag, declared):
                counts[AGREE] += 1
            else:
                counts[MISMATCH] += 1
                if verdict is None or verdict[0] == "langid_undetermined":
                    verdict = ("langid_mismatch", f"{side}: declared {declared}, detected {tag} ({conf:.2f})")
        return verdict

    def report(self) -> dict:
        out = super().report()
        for side, counts in self.outcomes.items():
            out.update({f"{side}:{name}": n for name, n in zip(OUTCOMES, counts)})
        for side, (agree, bad, _) in self.outcomes.items():
            out[f"{side}:agreement"] = round(agree / (agree + bad), 4) if agree + bad else None
        return out
