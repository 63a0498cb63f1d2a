"""Language-ID filter: each checked side must be detected as its declared language.

Texts are detected once: a text-keyed front cache holds the results of recent texts; when the texts it holds pass
`FRONT_CHARS` characters it is cleared, and those detected since the last clear move to a memo keyed by a 128-bit
digest of the text (`DigestMap`, about 25 bytes per distinct text however long), where later batches look up the
texts the front does not have. Until the first clear no text is digested at all. CrossIn reuses each source text
across modes. With `workers > 1` (pycld2), the texts new to the front are sent in chunks to worker processes as the
batch is gathered (`feed`), and collected in order in `prepare`; the memo, counters and verdicts stay here, so the
result is the same with any number of workers. Detections below `min_confidence`, or with no answer (numbers, code, very short text), count as undetermined and are kept unless
`drop_undetermined`. The agreement rate per side (agree / (agree + mismatch)) goes to the manifest.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Literal

from crosstune.config import StrictModel
from crosstune.data.blocks import BatchFilter, Row
from crosstune.data.langid import get_detector, same_base_language
from crosstune.data.langid_pool import DetectorPool, Job
from crosstune.data.digests import DigestMap
from crosstune.data.digests import digest as _digest
from crosstune.languages import normalize

Side = Literal["user", "assistant"]
OUTCOMES = ("agree", "mismatch", "undetermined")
AGREE, MISMATCH, UNDETERMINED = range(3)


class LangIdConfig(StrictModel):
    backend: Literal["pycld2", "lingua"] = "pycld2"
    sides: list[Side] = ["user", "assistant"]
    min_confidence: float = 0.0
    restrict: bool = True  # candidates = the recipe's languages (lingua restricts, pycld2 re-ranks)
    accept: dict[str, list[str]] = {}  # declared -> also accepted, e.g. {ms: [id]}
    drop_undetermined: bool = False


class LangIdFilter(BatchFilter):
    name = "langid"

    def __init__(self, cfg: LangIdConfig, languages: list[str], workers: int = 1):
        super().__init__()
        self.cfg = cfg
        candidates = languages if cfg.restrict and len(languages) > 1 else None
        self.detector = get_detector(cfg.backend, candidates)
        # pycld2 detects one text per call: worth a second process. lingua already detects a batch on all cores.
        parallel = workers > 1 and cfg.backend == "pycld2" and os.name == "posix"
        self._pool_args = (cfg.backend, candidates, workers - 1) if parallel else None
        self._pool: DetectorPool | None = None  # started with the first batch
        self.memo = DigestMap()  # digest of a text evicted from the front -> index into `results`
        self.results: list[tuple[str | None, float]] = []  # each distinct (tag, confidence) once
        self._codes: dict[tuple, int] = {}
        self.front: dict[str, tuple[str | None, float]] = {}  # recent texts -> detection (bounded)
        self.fresh: dict[str, int] = {}  # front texts detected since the last eviction -> result code
        self._front_chars = 0
        # the batch being gathered: its texts not in the front (in order), the part not yet handed to a worker,
        # its jobs; then the sealed batches (complete, not yet prepared): at most two, with workers
        self._new: dict[str, None] = {}
        self._chunk: list[str] = []
        self._jobs: list[list] = []
        self._sealed: deque[tuple[dict, list]] = deque()
        self._prev: dict[str, None] = {}  # texts of the sealed batch still in flight while the next is gathered
        self._unsent: list | None = None  # a sealed batch's last job, waiting for an idle worker
        self._fed = 0
        self._next_send = self.SEND
        self.seconds = 0.0  # time the build spent on language ID (detecting, or waiting for the workers)
        self.worker_seconds = 0.0  # detector CPU time in the worker processes (known once closed)
        self.worker_texts = 0  # texts detected there
        self.sides = set(cfg.sides)
        self.min_confidence = cfg.min_confidence
        self.outcomes = {side: [0, 0, 0] for side in dict.fromkeys(cfg.sides)}  # side -> counts per OUTCOMES
        self.accept = {normalize(k): {normalize(x) for x in v} for k, v in cfg.accept.items()}

    FRONT_CHARS = 32_000_000  # the front cache is cleared when the texts it holds pass this many characters
    SEND = 64  # a worker gets the texts gathered so far once there are this many and it is idle
    RETRY = 32  # when every worker is busy, try again after this many more texts

    @property
    def overlaps(self) -> bool:
        """With workers, the next batch may be gathered while this one is detected (see `seal`)."""
        return self._pool_args is not None

    def feed(self, row: Row) -> None:
        """Note the row's texts that need detection as it joins the batch; with workers, the texts gathered so
        far go to an idle worker, so they are detected while the rest of the batch is gathered."""
        if not self._fed:  # the first row of a batch: the front is as `prepare` would find it
            if self._front_chars > self.FRONT_CHARS:
                if self._sealed:
                    raise RuntimeError("langid: front eviction due while a batch is in flight")
                self._evict()
            if self._pool is None and self._pool_args is not None:
                self._pool = DetectorPool(*self._pool_args)
            self._prev = self._sealed[-1][0] if self._sealed else {}
        self._fed += 1
        front, new, prev, sides, chunk = self.front, self._new, self._prev, self.sides, self._chunk
        for side, t, _ in row.checks:
            if t not in front and side in sides and t not in new and t not in prev:
                new[t] = None
                chunk.append(t)
        if len(chunk) >= self._next_send and self._pool is not None:
            self._pump()

    def _pump(self) -> None:
        """Hand the oldest texts waiting to an idle worker: a sealed batch's last job first, then the chunk
        being gathered; if every worker is busy, try again after `RETRY` more texts."""
        pool = self._pool
        worker = pool.idle()
        if worker is not None and self._unsent is not None:
            job, self._unsent = self._unsent, None
            job[3] = pool.submit(worker, job[4])
            worker = pool.idle()
        if worker is None:
            self._next_send = len(self._chunk) + self.RETRY
        elif len(self._chunk) >= self.SEND:
            self._jobs.append(self._job(self._chunk, worker))
            self._chunk, self._next_send = [], self.SEND

    def _job(self, texts: list[str], worker=None) -> list:
        """[texts, their digests, memo codes, detection job, texts to detect]: the texts not found in the memo
        go to `worker`, or are detected in `prepare` (job None)."""
        keys = codes = None
        todo = texts
        if len(self.memo):  # the front was cleared before: texts seen then are found by digest
            keys = [_digest(t) for t in texts]
            codes = self.memo.get_many(keys)
            todo = [t for t, c in zip(texts, codes) if c is None]
        job = self._pool.submit(worker, todo) if worker is not None and todo else None
        return [texts, keys, codes, job, todo]

    def seal(self, batch: list[Row]) -> bool:
        """`batch` is complete (every row fed): its last texts go to an idle worker (or wait for one). True when
        the next batch may be gathered before this one is prepared: no front eviction is due before it."""
        if self._fed != len(batch):
            raise RuntimeError(f"langid: {self._fed} rows fed for a batch of {len(batch)}")
        if self._chunk:
            worker = self._pool.idle() if self._pool is not None else None
            job = self._job(self._chunk, worker)
            self._jobs.append(job)
            if self._pool is not None and job[3] is None and job[4]:
                self._unsent = job
        self._front_chars += sum(map(len, self._new))
        self._sealed.append((self._new, self._jobs))
        self._new, self._chunk, self._jobs, self._fed, self._next_send = {}, [], [], 0, self.SEND
        return self._front_chars <= self.FRONT_CHARS

    def _detect_here(self, texts: list[str]) -> list:
        if not texts:
            return []
        t0 = time.perf_counter()
        found = self.detector.detect_many(texts)
        self.seconds += time.perf_counter() - t0
        return found

    def prepare(self, batch: list[Row]) -> None:
        """Detections of the batch's new texts into the front: collected from the workers, or detected here
        (jobs no worker took). Batches are prepared in the order they were sealed."""
        if not self._sealed:  # not sealed by the caller (no look-ahead): seal it now
            if not self._fed:
                for row in batch:
                    self.feed(row)
            self.seal(batch)
        _, jobs = self._sealed.popleft()
        front, results = self.front, self.results
        for rec in jobs:
            texts, keys, codes, job, todo = rec
            if rec is self._unsent:
                self._unsent = None
            if type(job) is Job:
                t0 = time.perf_counter()
                found = self._pool.result(job)
                self.seconds += time.perf_counter() - t0
                if found is None:  # the worker died: detect here
                    found = self._detect_here(todo)
            else:
                found = self._detect_here(todo)
            found = self._record(todo, found)
            if keys is None:  # nothing was evicted yet: each text was detected
                codes = found
            else:
                it = iter(found)
                codes = [next(it) if c is None else c for c in codes]
            for t, c in zip(texts, codes):
                front[t] = results[c]

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
            self.worker_seconds, self.worker_texts = self._pool.cpu_seconds, self._pool.texts
            self._pool.close()
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
        outcomes, front = self.outcomes, self.front
        for side, text, declared in row.checks:
            counts = outcomes.get(side)
            if counts is None:  # a side this filter does not check
                continue
            tag, conf = front[text]
            if tag is None or conf < self.min_confidence:
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
