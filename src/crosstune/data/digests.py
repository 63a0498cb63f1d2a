"""A compact map from 128-bit text digests to small ints, for build state that grows with the rows (exact-dedup
keys, the language-ID memo, the corpus id table): a plain dict while small, then sorted numpy arrays (24 bytes
per entry) plus a dict of recent inserts merged in every `merge_at` entries, instead of ~100-170 bytes per entry
for a dict of Python objects.

Digests are xxh3-128 of the UTF-8 text; a chance collision among 10^9 texts has probability about 10^-21.
"""

from __future__ import annotations

import numpy as np
from xxhash import xxh3_128_digest

MASK64 = (1 << 64) - 1


def digest(text: str) -> bytes:
    return xxh3_128_digest(text.encode("utf-8", "surrogatepass"))


def _split(key: bytes) -> tuple[int, int]:
    return int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")


class DigestMap:
    """`key (16-byte digest) -> int`; `get` for one key, `get_many` for a batch (vectorized).

    Up to `merge_at` entries it is a plain dict (as fast as one); past that the dict is merged into the sorted
    arrays, and a one-hash Bloom filter over the merged keys (8 MB) answers most lookups of new keys without a
    search."""

    def __init__(self, merge_at: int = 1 << 18, bloom_bits: int = 1 << 26):
        self.merge_at = merge_at
        self.hi = np.empty(0, dtype=np.uint64)  # sorted
        self.lo = np.empty(0, dtype=np.uint64)
        self.val = np.empty(0, dtype=np.int64)
        self.recent: dict[bytes, int] = {}
        self._bloom = bytearray(bloom_bits >> 3)
        self._bloom_mask = bloom_bits - 1
        self._merged = False

    def __len__(self) -> int:
        return len(self.hi) + len(self.recent)

    def get(self, key: bytes) -> int | None:
        v = self.recent.get(key)
        if v is not None or not self._merged:
            return v
        b = int.from_bytes(key[8:12], "little") & self._bloom_mask
        if not self._bloom[b >> 3] >> (b & 7) & 1:
            return None
        h, lo = _split(key)
        hi = self.hi
        i = int(hi.searchsorted(np.uint64(h)))
        while i < len(hi) and int(hi[i]) == h:
            if int(self.lo[i]) == lo:
                return int(self.val[i])
            i += 1
        return None

    def get_many(self, keys: list[bytes]) -> list[int | None]:
        """Values of `keys` (None when absent), with one vectorized search over the merged part."""
        out: list[int | None] = [self.recent.get(k) for k in keys]
        if not self._merged or not keys:
            return out
        pairs = np.frombuffer(b"".join(keys), dtype="<u8").reshape(-1, 2)
        hk, lk = pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)
        idx = self.hi.searchsorted(hk)
        inside = idx < len(self.hi)
        hit = np.zeros(len(keys), dtype=bool)
        hit[inside] = (self.hi[idx[inside]] == hk[inside]) & (self.lo[idx[inside]] == lk[inside])
        vals = self.val[np.minimum(idx, len(self.val) - 1)]
        for j in np.flatnonzero(hit).tolist():
            out[j] = int(vals[j])
        # an equal high word with another low word first (probability ~2^-64): resolve one by one
        near = np.zeros(len(keys), dtype=bool)
        near[inside] = (self.hi[idx[inside]] == hk[inside]) & ~hit[inside]
        for j in np.flatnonzero(near).tolist():
            if out[j] is None:
                out[j] = self.get(keys[j])
        return out

    def setdefault(self, key: bytes, value: int) -> int | None:
        """The value of `key` if present; else `key -> value` is put and None returned (one dict operation
        while the map is a plain dict)."""
        recent = self.recent
        if self._merged:
            v = self.get(key)
            if v is None:
                self.put(key, value)
            return v
        n = len(recent)
        v = recent.setdefault(key, value)
        if len(recent) == n:
            return v
        if n + 1 >= self.merge_at:
            self._merge()
        return None

    def put(self, key: bytes, value: int) -> None:
        self.recent[key] = value
        if len(self.recent) >= self.merge_at:
            self._merge()

    def _merge(self) -> None:
        keys = list(self.recent)
        pairs = np.frombuffer(b"".join(keys), dtype="<u8").reshape(-1, 2)
        hk, lk = pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)
        vals = np.fromiter(self.recent.values(), dtype=np.int64, count=len(keys))
        self.recent = {}
        bits = (np.frombuffer(b"".join(k[8:12] for k in keys), dtype="<u4").astype(np.int64)
                & self._bloom_mask)
        bloom = np.frombuffer(self._bloom, dtype=np.uint8)
        np.bitwise_or.at(bloom, bits >> 3, (1 << (bits & 7)).astype(np.uint8))
        order = np.argsort(hk, kind="stable")
        hk, lk, vals = hk[order], lk[order], vals[order]
        pos = self.hi.searchsorted(hk)
        self.hi = np.insert(self.hi, pos, hk)
        self.lo = np.insert(self.lo, pos, lk)
        self.val = np.insert(self.val, pos, vals)
        self._merged = True


class StringList:
    """Append-only strings: a plain list up to `pack_at` entries, then one UTF-8 buffer with offsets (~8 bytes +
    the text per entry)."""

    def __init__(self, pack_at: int = 1 << 18) -> None:
        self.pack_at = pack_at
        self._list: list[str] | None = []
        self._buf = bytearray()
        self._off = [0]
        self._offsets = np.zeros(1, dtype=np.int64)

    def append(self, text: str) -> int:
        if self._list is not None:
            self._list.append(text)
            if len(self._list) < self.pack_at:
                return len(self._list) - 1
            items, self._list = self._list, None
            for t in items:
                self._pack(t)
            return len(self) - 1
        self._pack(text)
        return len(self) - 1

    def _pack(self, text: str) -> None:
        self._buf += text.encode("utf-8", "surrogatepass")
        self._off.append(len(self._buf))
        if len(self._off) >= 1 << 16:  # keep the offsets compact: move them into the numpy array
            self._offsets = np.concatenate([self._offsets, np.asarray(self._off[1:], dtype=np.int64)])
            self._off = [self._off[-1]]

    def __len__(self) -> int:
        if self._list is not None:
            return len(self._list)
        return len(self._offsets) + len(self._off) - 2

    def __getitem__(self, i: int) -> str:
        if self._list is not None:
            return self._list[i]
        n_done = len(self._offsets) - 1
        if i < n_done:
            a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        else:
            a, b = self._off[i - n_done], self._off[i - n_done + 1]
        return self._buf[a:b].decode("utf-8", "surrogatepass")
