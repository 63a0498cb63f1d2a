"""`crosstune.data.spool`: the external seeded shuffle gives exactly the in-memory permutation's bytes."""

import numpy as np
import pytest

from crosstune.data.spool import RowSpool


@pytest.mark.parametrize("bucket_bytes,memory_bytes", [(1 << 30, 1 << 30), (2000, 1 << 30), (2000, 2000), (100, 100)])
def test_spool_writes_rows_in_the_permutation(tmp_path, bucket_bytes, memory_bytes):
    # in memory (also with buckets that would be small), a few buckets, one row per bucket
    rows = [f'{{"id": "{i}", "text": "{"é" * (i % 7)}"}}\n'.encode() for i in range(1000)]
    spool = RowSpool(tmp_path / "spool", bucket_bytes=bucket_bytes, memory_bytes=memory_bytes)
    for r in rows:
        spool.add(r)
    # rows up to `memory_bytes` stay in memory; past it they all go to the spool file
    assert (tmp_path / "spool").exists() == (sum(map(len, rows)) > memory_bytes)
    order = np.random.default_rng(3).permutation(len(rows))
    assert spool.finish(tmp_path / "out.jsonl", order) == 1000
    assert (tmp_path / "out.jsonl").read_bytes() == b"".join(rows[i] for i in order)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # spool and buckets removed


def test_spool_without_shuffle_keeps_order(tmp_path):
    for memory_bytes in (1 << 20, 4):  # in memory, spooled
        spool = RowSpool(tmp_path / "spool", memory_bytes=memory_bytes)
        for i in range(5):
            spool.add(f"{i}\n".encode())
        spool.finish(tmp_path / "out", None)
        assert (tmp_path / "out").read_text() == "0\n1\n2\n3\n4\n"
        assert not (tmp_path / "spool").exists()

