"""Kept rows held, or spooled to disk, as their final JSON lines, then written out in a seeded order with bounded
memory.

A build does not know how many rows it keeps until the filters have run, and the shuffle is the permutation
`np.random.default_rng(seed).permutation(n)` of all of them (the same bytes as shuffling a list in memory).
`RowSpool.finish` writes output line j = row `order[j]`:

- up to `memory_bytes` of rows (256 MB: a CrossIn build of 170K rows is ~180 MB): the lines stay in memory as
  they came (no spool file), and are joined in order straight to the output (a third of the CPU time of writing
  them to a spool file and reading them back; the price is holding them during the build);
- more: the rows so far go to a spool file, and so does every later one; `finish` then does an external bucket
  pass. Each row's output position is `inverse[i]`; the rows are routed, in one sequential read, to K temporary
  files by which 1/K of the output they land in, then each bucket (about `bucket_bytes`) is read, put in order
  and appended. Memory: three int64 arrays of n and one bucket.
"""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import numpy as np

BUCKET_BYTES = 64 << 20
MEMORY_BYTES = 256 << 20


class RowSpool:
    def __init__(self, path: str | Path, bucket_bytes: int = BUCKET_BYTES, memory_bytes: int = MEMORY_BYTES):
        self.path = Path(path)
        self.bucket_bytes, self.memory_bytes = bucket_bytes, memory_bytes
        self._rows: list[bytes] | None = []  # the lines while they fit in `memory_bytes`; None once spooled
        self._held = 0
        self._file = None
        self.lengths = array("q")

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, line: bytes) -> None:
        self.add_many([line])

    def add_many(self, lines: list[bytes]) -> None:
        """`add` each line (kept, or with one write once spooled)."""
        lengths = list(map(len, lines))
        self.lengths.extend(lengths)
        if self._rows is None:
            self._file.write(b"".join(lines))
            return
        self._rows += lines
        self._held += sum(lengths)
        if self._held > self.memory_bytes:
            self._spill()

    def _spill(self) -> None:
        """Past `memory_bytes`: the rows so far go to the spool file, and every later row after them."""
        rows, self._rows = self._rows, None
        self._file = open(self.path, "wb", buffering=1 << 20)
        for a in range(0, len(rows), 4096):
            self._file.write(b"".join(rows[a:a + 4096]))

    @property
    def size(self) -> int:
        """Bytes added so far."""
        return int(np.frombuffer(self.lengths, dtype=np.int64).sum()) if self.lengths else 0

    def finish(self, dest: str | Path, order: np.ndarray | None) -> int:
        """Write the rows to `dest` (in `order`, or as added when None) and delete the spool file."""
        n = len(self.lengths)
        rows, self._rows = self._rows, None
        if rows is not None:  # never spooled
            with open(dest, "wb", buffering=0) as out:
                ranks = range(n) if order is None else order.tolist()
                for a in range(0, n, 4096):
                    out.write(b"".join([rows[i] for i in ranks[a:a + 4096]]))
            return n
        self._file.close()
        if order is None:
            os.replace(self.path, dest)
            return n
        try:
            self._bucketed(dest, order)
        finally:
            self.path.unlink(missing_ok=True)
        return n

    def discard(self) -> None:
        self._rows = None
        if self._file is not None:
            self._file.close()
        self.path.unlink(missing_ok=True)

    def _offsets(self) -> np.ndarray:
        off = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(self.lengths, dtype=np.int64), out=off[1:])
        return off

    def _bucketed(self, dest, order: np.ndarray) -> None:
        n = len(order)
        k = -(-self.size // self.bucket_bytes)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n, dtype=np.int64)
        bucket = inverse * k // n  # spool row -> which 1/k of the output it lands in
        off = self._offsets()
        parts = [self.path.with_name(f"{self.path.name}.{b}") for b in range(k)]
        files = [open(p, "wb", buffering=1 << 16) for p in parts]
        try:
            # route: read the spool in blocks of whole rows; each block's rows go to their buckets, one write each
            with open(self.path, "rb", buffering=1 << 16) as f:
                i = 0
                while i < n:
                    j = max(i + 1, int(np.searchsorted(off, off[i] + ROUTE_BYTES, side="right")) - 1)
                    j = min(j, n)
                    block = f.read(int(off[j] - off[i]))
                    rows = np.argsort(bucket[i:j], kind="stable")  # block rows grouped by bucket, spool order
                    starts = off[i:j][rows] - off[i]
                    ends = off[i + 1:j + 1][rows] - off[i]
                    cuts = np.searchsorted(bucket[i:j][rows], np.arange(k + 1)).tolist()
                    for b in range(k):
                        if cuts[b] < cuts[b + 1]:
                            _write_rows(files[b], block, starts[cuts[b]:cuts[b + 1]], ends[cuts[b]:cuts[b + 1]])
                    i = j
            for fh in files:
                fh.close()
            lengths = np.diff(off)
            with open(dest, "wb", buffering=1 << 20) as out:
                for b, part in enumerate(parts):
                    members = np.flatnonzero(bucket == b)  # spool rows in this bucket, in spool order
                    data = part.read_bytes()
                    part.unlink()
                    boff = np.zeros(len(members) + 1, dtype=np.int64)
                    np.cumsum(lengths[members], out=boff[1:])
                    ranked = np.argsort(inverse[members], kind="stable")
                    _write_rows(out, data, boff[ranked], boff[ranked + 1])
        finally:
            for fh in files:
                fh.close()
            for p in parts:
                p.unlink(missing_ok=True)


ROUTE_BYTES = 8 << 20  # spool bytes read at a time when routing rows to buckets
WRITE_BYTES = 4 << 20  # output bytes joined per write


def _write_rows(out, data: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
    """Write `data[starts[i]:ends[i]]` for each i in order, joined into writes of about `WRITE_BYTES`."""
    if not len(starts):
        return
    done = np.cumsum(ends - starts)
    cuts = [0, *np.searchsorted(done, np.arange(WRITE_BYTES, int(done[-1]), WRITE_BYTES), side="right").tolist(),
            len(starts)]
    st, en = starts.tolist(), ends.tolist()
    for a, b in zip(cuts, cuts[1:]):
        if a < b:
            out.write(b"".join([data[x:y] for x, y in zip(st[a:b], en[a:b])]))
