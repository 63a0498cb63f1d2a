"""`crosstune.data.digests`: the compact digest map and string list behind the build's dedup and memo state."""

import random

from crosstune.data.digests import DigestMap, StringList, digest


def test_digest_map_agrees_with_a_dict_across_merges():
    rng = random.Random(0)
    m, ref = DigestMap(merge_at=64), {}
    texts = [f"text {rng.randrange(3000)}" for _ in range(2000)]
    for i, t in enumerate(texts):
        k = digest(t)
        assert m.get(k) == ref.get(k)
        if k not in ref:
            m.put(k, i)
            ref[k] = i
    assert len(m) == len(ref) and len(m.hi) > 0  # most entries were merged into the sorted arrays
    probe = [digest(f"text {j}") for j in range(3500)]
    assert m.get_many(probe) == [ref.get(k) for k in probe]


def test_digest_map_setdefault_is_get_then_put_across_merges():
    rng = random.Random(1)
    m, ref = DigestMap(merge_at=64), {}
    for i in range(2000):
        k = digest(f"text {rng.randrange(3000)}")
        assert m.setdefault(k, i) == ref.get(k)  # the value there before, or None when it was put
        ref.setdefault(k, i)
    assert len(m) == len(ref) and len(m.hi) > 0
    assert m.get_many(list(ref)) == list(ref.values())


def test_string_list_round_trips_past_its_flush():
    s = StringList(pack_at=1000)
    words = [f"id-{i}-{'é' * (i % 3)}" for i in range((1 << 16) + 10)]
    for w in words:
        s.append(w)
    assert len(s) == len(words)
    assert [s[i] for i in (0, 1, 65534, 65535, 65536, len(words) - 1)] == \
        [words[i] for i in (0, 1, 65534, 65535, 65536, len(words) - 1)]
