"""`crosstune.data.langid_pool`: language ID in real worker processes gives the in-process detector's answers."""

from __future__ import annotations

import pytest

from crosstune.data.langid import get_detector
from crosstune.data.langid_pool import DetectorPool, default_workers

TEXTS = ["Photosynthesis is the process by which green plants use sunlight to make food.",
         "光合作用是绿色植物利用阳光将二氧化碳和水转化为食物的过程。",
         "Quang hợp là quá trình cây xanh sử dụng ánh sáng mặt trời để tạo ra thức ăn.",
         "12 + 30 = 42", "", "a\x00b\x7f control characters and \ud800 a lone surrogate in English text"]


def test_worker_detections_equal_in_process_ones():
    here = get_detector("pycld2", ["en", "zh", "vi"])
    pool = DetectorPool("pycld2", ["en", "zh", "vi"], processes=2)
    try:
        jobs = []
        for k in range(6):  # two workers, DEPTH jobs each in flight: `idle` hands out one with room
            worker = pool.idle()
            while worker is None:
                pool.result(jobs[0][1])
                worker = pool.idle()
            jobs.append((k, pool.submit(worker, TEXTS[k:] + TEXTS[:k])))
        assert len({id(job.worker) for _, job in jobs}) == 2
        for k, job in reversed(jobs):  # results are matched to their jobs whatever order they are asked in
            assert pool.result(job) == here.detect_many(TEXTS[k:] + TEXTS[:k]) and pool.done(job)
        assert pool.texts == 6 * len(TEXTS) and pool.cpu_seconds >= 0
    finally:
        pool.close()
    assert pool.idle() is None  # closed: no workers left


def test_a_dead_worker_gives_none_and_the_pool_goes_on_without_it():
    pool = DetectorPool("pycld2", None, processes=1)
    try:
        worker = pool.idle()
        first = pool.submit(worker, TEXTS)
        assert pool.result(first) == get_detector("pycld2").detect_many(TEXTS)
        worker.proc.kill()
        worker.proc.wait()
        job = pool.submit(worker, TEXTS)
        assert pool.result(job) is None and pool.done(job)  # the caller detects these texts itself
        assert pool.idle() is None
    finally:
        pool.close()


def test_default_workers_is_one_or_two():
    assert default_workers() in (1, 2)


@pytest.mark.parametrize("processes", [1, 3])
def test_close_reaps_the_workers(processes):
    pool = DetectorPool("pycld2", None, processes=processes)
    procs = [w.proc for w in pool._workers]
    pool.close()
    assert [p.returncode for p in procs] == [0] * processes
    assert pool.peak_rss_kb > 0  # each worker reports its peak memory as it stops


def test_default_workers_counts_free_cores(monkeypatch):
    """A second process only when a second core is free as the build starts (crosstune.threads' measure)."""
    from crosstune import threads
    from crosstune.data import langid_pool

    if not langid_pool.SUPPORTED:
        assert default_workers() == 1
        return
    for cores, busy, want in [(2, 0.0, 2), (8, 0.2, 2), (2, 0.9, 1), (2, 3.5, 1), (1, 0.0, 1), (4, 2.0, 2)]:
        monkeypatch.setattr(threads, "usable_cores", lambda: cores)
        monkeypatch.setattr(threads, "busy_cores", lambda n: busy)
        assert default_workers() == want, (cores, busy)
