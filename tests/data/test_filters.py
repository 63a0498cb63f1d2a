"""Filter blocks: each drop lands in the exclusion sink with its reason; counters add up."""

from __future__ import annotations

from crosstune.data.blocks import ExclusionSink, Quota
from crosstune.data.filters.dedup import ExactDedup, NearDedup, NearDedupConfig
from crosstune.data.filters.langid import LangIdConfig, LangIdFilter
from crosstune.data.langid_pool import DetectorPool
from crosstune.data.filters.length import LengthConfig, LengthFilter
from crosstune.data.recipes.common import make_row

EN = "Photosynthesis is the process by which green plants use sunlight to make food from carbon dioxide and water."
ZH = "光合作用是绿色植物利用阳光将二氧化碳和水转化为食物的过程。"


def row(i, user, bot, ul="en", bl="en"):
    return make_row(f"r{i}", recipe="t", mode="m", user=user, response=bot, instruction_language=ul,
                    response_language=bl, source_ids=[str(i)], checks=(("user", user, ul), ("assistant", bot, bl)))


def run(block, rows):
    sink = ExclusionSink()
    kept = [r.example.id for r in block.run(rows, sink)]
    return kept, [(e.id, e.reason, e.block) for e in sink.items], block.report()


def test_length():
    kept, excl, stats = run(LengthFilter(LengthConfig(min_chars=2, max_chars=50)),
                            [row(0, "Explain.", "ok ok"), row(1, "Explain.", " "), row(2, "Explain.", EN)])
    assert kept == ["r0"] and excl == [("r1", "too_short", "length"), ("r2", "too_long", "length")]
    assert stats == {"dropped:too_long": 1, "dropped:too_short": 1, "in": 3, "out": 1}


def test_exact_dedup_keeps_the_first():
    kept, excl, _ = run(ExactDedup(), [row(0, "Q", EN), row(1, "Q", EN), row(2, "Q2", EN)])
    assert kept == ["r0", "r2"] and excl == [("r1", "exact_duplicate", "exact_dedup")]


def test_near_dedup_catches_small_edits_in_any_script():
    rows = [row(0, "Explain photosynthesis.", EN), row(1, "Explain photosynthesis!", EN.replace("food", "food,")),
            row(2, "What is the capital of France?", "Paris is the capital of France."),
            row(3, "解释光合作用。", ZH), row(4, "解释一下光合作用。", ZH)]
    kept, excl, _ = run(NearDedup(NearDedupConfig(threshold=0.7)), rows)
    assert kept == ["r0", "r2", "r3"]
    assert [e[:2] for e in excl] == [("r1", "near_duplicate"), ("r4", "near_duplicate")]


def test_langid_drops_mismatches_and_keeps_undetermined():
    rows = [row(0, "Explain photosynthesis in plants.", ZH, "en", "zh"),
            row(1, "Explain photosynthesis in plants.", EN, "en", "zh"),  # response declared zh, is English
            row(2, "What is 12 + 30?", "42", "en", "zh")]  # a number cannot be identified
    f = LangIdFilter(LangIdConfig(), ["en", "zh"])
    kept, excl, stats = run(f, rows)
    assert kept == ["r0", "r2"] and excl == [("r1", "langid_mismatch", "langid")]
    assert stats["assistant:agree"] == 1 and stats["assistant:mismatch"] == 1
    assert stats["assistant:undetermined"] == 1 and stats["assistant:agreement"] == 0.5
    strict = LangIdFilter(LangIdConfig(drop_undetermined=True), ["en", "zh"])
    assert run(strict, rows)[0] == ["r0"]


def test_langid_accept_map():
    ms = "Penyelidik utama mengatakan bahawa ia mungkin menghasilkan pengesanan awal kanser kepada pesakit."
    rows = [row(0, ms, ms, "id", "id")]
    f = LangIdFilter(LangIdConfig(backend="lingua", accept={"id": ["ms"]}), ["id", "ms"])
    assert run(f, rows)[0] == ["r0"]


def test_quota_stops_pulling_once_full():
    pulled = []

    def stream():
        for i in range(100):
            pulled.append(i)
            yield row(i, "Q", EN, "en", "en" if i % 2 else "zh")

    kept, _, stats = run(Quota({"en": 3, "zh": 1}), stream())
    assert kept == ["r0", "r1", "r3", "r5"] and len(pulled) == 6 and stats["surplus_unused"] == 2


def test_langid_memo_after_front_evictions_gives_the_same_verdicts():
    # the text-keyed front is cleared when it holds FRONT_CHARS characters, its texts moving to the digest memo:
    # a tiny limit (clears every batch) gives the same verdicts, counters and detections as no limit at all
    texts = [(EN, "en"), (ZH, "zh"), ("What is 12 + 30?", "en"), ("解释光合作用。", "zh"), (EN + " Really.", "en")]
    rows = [row(i, texts[i % 5][0], texts[(i * 3) % 5][0], texts[i % 5][1], "zh" if i % 2 else "en")
            for i in range(300)]
    results = []
    for limit in (10 ** 12, 100):
        f = LangIdFilter(LangIdConfig(), ["en", "zh"])
        f.batch_size, f.FRONT_CHARS = 7, limit
        results.append(run(f, rows))
        assert results[-1][2]["texts_detected"] == 5  # each distinct text once, whether in the front or the memo
        assert (len(f.memo) > 0) == (limit == 100)
    assert results[0] == results[1]


def _pipeline(workers, rows, *, quota=None, front_chars=10 ** 12, read_ahead=True, shared=None):
    from crosstune.data.blocks import run_blocks

    lid = LangIdFilter(LangIdConfig(), ["en", "zh"], workers=workers)
    lid.batch_size, lid.FRONT_CHARS, lid.SEND = 7, front_chars, 2  # many batches, many worker jobs
    if shared is not None:  # what the worker's placement looks like to `_steer`
        lid.SAMPLES, lid.SHARED, lid.PAUSE = 4, 3, 5
        lid._pool = DetectorPool(*lid._pool_args)  # started here so its placement can be faked
        lid._pool.sharing = lambda: shared
    blocks = [LengthFilter(LengthConfig(max_chars=60)), ExactDedup(), lid] + ([Quota(quota)] if quota else [])
    sink = ExclusionSink()
    try:
        kept = [r.example.id for r in run_blocks(blocks, rows, sink, read_ahead=read_ahead)]
    finally:
        for b in blocks:
            b.close()
    return (kept, [(e.id, e.reason, e.block, e.detail) for e in sink.items], [b.report() for b in blocks],
            lid.worker_texts, lid.worker_pauses)


def test_langid_workers_give_the_same_rows_counters_and_exclusion_order():
    # a worker process detects while the next batch is gathered (read ahead); length and dedup drops met
    # meanwhile are held back, so the exclusions come in the same order as with everything in one process
    words = ["Explain photosynthesis in plants.", "光合作用是什么？", "What is 12 + 30?", "植物怎样制造食物？",
             "Describe the water cycle in a few sentences.", EN, ZH]
    rows = []
    for i in range(400):
        user = words[i % 7] + (f" ({i % 50})" if i % 3 else "")
        bot = words[(i * 5) % 7]
        rows.append(row(i, user, bot, "zh" if "光" in user or "植" in user else "en", "zh" if i % 4 else "en"))
    for front_chars in (10 ** 12, 300):  # without, and with the front evicted every few batches
        one = _pipeline(1, rows, front_chars=front_chars)
        two = _pipeline(2, rows, front_chars=front_chars)
        assert two[:3] == one[:3]
        assert one[3] == 0 and two[3] > 0  # texts were detected in the worker
        assert {e[1] for e in one[1]} == {"too_long", "exact_duplicate", "langid_mismatch"}
        blocks = [e[2] for e in one[1]]
        assert blocks.index("langid") < len(blocks) - 1 - blocks[::-1].index("exact_dedup")  # interleaved
    quota = {"en": 40, "zh": 60}  # a quota stops pulling: no read-ahead past it, same rows pulled
    assert _pipeline(2, rows, quota=quota)[:3] == _pipeline(1, rows, quota=quota)[:3]


def test_langid_worker_paused_while_it_shares_the_core_gives_the_same_result():
    # a worker seen on this process's CPU in 3 of 4 looks is left idle for 5 batches, then tried again (10 next)
    rows = [row(i, f"Explain photosynthesis in plants ({i}).", "光合作用是什么？" if i % 3 else f"Plants make food ({i}).",
                "en", "zh") for i in range(300)]
    one = _pipeline(1, rows)
    shared = _pipeline(2, rows, shared=True)
    apart = _pipeline(2, rows, shared=False)
    assert shared[:3] == apart[:3] == one[:3]
    assert shared[4] >= 2 and apart[4] == 0 and 0 < shared[3] < apart[3]
