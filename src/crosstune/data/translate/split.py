"""Data parallel translation: under `accelerate launch`/`torchrun`, each process translates its share of the
segments still missing from the call cache, and every process gets every translation.

`SplitTranslator` wraps the run's translator (`SegmentCache`, or an engine that caches its own calls) with the
same `translate_iter` interface. For each call (a language, a pass), the segments the cache lacks are ordered as
the HF engine orders them (longest first, stable) and cut into batches of `engine.batch_size`; process k takes
every n-th batch from the k-th (`distributed.my_share`), so each batch is the batch one process would have sent
and the translations are the one-process translations. What is missing is process 0's view, read once and sent
to the others (a process that runs ahead may already be writing this call's results). Each result is committed
to the call cache as it comes back (a killed run keeps it); then the processes exchange their results
(`State.gather`) and process 0 adds the others' to its cache when they are not there. No process reads another's
cache file, so this works across machines too, each with its own cache, and a rerun on process 0's machine
resumes from everything exchanged. A self-caching engine cannot tell what is cached: all of its segments are split
(its own cache answers what is done).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from crosstune.data.translate.cache import SegmentCache
from crosstune.distributed import State, my_share


class SplitTranslator:
    def __init__(self, inner, st: State, batch_size: int, measure: Callable[[str], int]):
        self.inner, self.st = inner, st
        self.batch_size, self.measure = max(1, batch_size), measure
        self.calls = 0  # segments this process sent to the engine
        self.hits = 0  # segments answered from the cache (counted on process 0 only, so the sum is the run's)
        self.segments = 0  # segments split over the processes (all processes, every call)
        self.mine = 0  # of those, this process's

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]:
        inner, st = self.inner, self.st
        found: dict[int, str] = {}
        if isinstance(inner, SegmentCache) and st.is_main:
            keys = [inner.key(t, source, target) for t in texts]
            cached = inner.cache.get_many(keys)
            found = {i: cached[k] for i, k in enumerate(keys) if k in cached}
        found = st.gather(found)[0]  # process 0's view: another may already be writing this call's results
        todo = sorted((i for i in range(len(texts)) if i not in found), key=lambda i: -self.measure(texts[i]))
        batches = [todo[s:s + self.batch_size] for s in range(0, len(todo), self.batch_size)]
        self.segments += len(todo)
        if st.is_main:
            self.hits += len(found)
        yield from found.items()
        got: dict[int, str] = {}
        calls0, hits0 = inner.calls, inner.hits
        for batch in my_share(batches, st):
            self.mine += len(batch)
            for j, out in inner.translate_iter([texts[i] for i in batch], source, target):
                got[batch[j]] = out
                yield batch[j], out
        self.calls += inner.calls - calls0
        self.hits += inner.hits - hits0  # segments another process had just finished (a self-caching engine)
        others: dict[int, str] = {}
        for rank, part in enumerate(st.gather(got)):
            if rank != st.rank:
                others.update(part)
        if st.is_main and others and isinstance(inner, SegmentCache):  # process 0's cache holds every result
            fresh = {inner.key(texts[i], source, target): out for i, out in others.items()}
            have = inner.cache.get_many(fresh)
            inner.cache.put_many({k: v for k, v in fresh.items() if k not in have}, "translate")
        yield from others.items()
