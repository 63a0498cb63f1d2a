"""`crosstune.data.spool`: the external seeded shuffle gives exactly the in-memory permutation's bytes."""

import numpy as np
import pytest

from crosstune.data.spool import RowSpool


@pytest.mark.parametrize("bucket_bytes", [1 << 30, 2000, 100])  # in memory, a few buckets, one row per bucket
def test_spool_writes_rows_in_the_permutation(tmp_path, bucket_bytes):
    rows = [f'{{"id": "{i}", "text": "{"é" * (i % 7)}"}}\n'.encode() for i in range(1000)]
    spool = RowSpool(tmp_path / "spool", bucket_bytes=bucket_bytes)
    for r in rows:
        spool.add(r)
    order = np.random.default_rng(3).permutation(len(rows))
    assert spool.finish(tmp_path / "out.jsonl", order) == 1000
    assert (tmp_path / "out.jsonl").read_bytes() == b"".join(rows[i] for i in order)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # spool and buckets removed


def test_spool_without_shuffle_keeps_order(tmp_path):
    spool = RowSpool(tmp_path / "spool")
    for i in range(5):
        spool.add(f"{i}\n".encode())
    spool.finish(tmp_path / "out", None)
    assert (tmp_path / "out").read_text() == "0\n1\n2\n3\n4\n"


@pytest.mark.parametrize("bucket_bytes", [1 << 30, 3000])
def test_spool_routes_and_writes_in_small_blocks(tmp_path, monkeypatch, bucket_bytes):
    """Rows routed a few at a time (blocks of ~500 bytes) and joined into small writes: the same bytes."""
    import crosstune.data.spool as spool_mod

    monkeypatch.setattr(spool_mod, "ROUTE_BYTES", 500)
    monkeypatch.setattr(spool_mod, "WRITE_BYTES", 300)
    rng = np.random.default_rng(5)
    rows = [f'{{"id": "{i}", "t": "{"字" * int(rng.integers(0, 400))}"}}\n'.encode() for i in range(700)]
    spool = RowSpool(tmp_path / "spool", bucket_bytes=bucket_bytes)
    spool.add_many(rows[:300])
    for r in rows[300:]:
        spool.add(r)
    order = np.random.default_rng(9).permutation(len(rows))
    spool.finish(tmp_path / "out.jsonl", order)
    assert (tmp_path / "out.jsonl").read_bytes() == b"".join(rows[i] for i in order)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
