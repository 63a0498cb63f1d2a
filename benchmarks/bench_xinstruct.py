"""Benchmark: the X-Instruction pipeline's own cost (reading, segmenting, filtering, parsing, embedding, clustering,
writing) against its model calls, measured in the same run.

    python benchmarks/bench_xinstruct.py --server openai:GGUF@http://127.0.0.1:8917/v1 [--model-passages 16]
        [--passages 1000] [--instructions 10000] [--out runs/bench_xinstruct]
        [--peer-dir DIR [--call-seconds GEN,JUDGE]] [--skip peer own embed]

1. The peer: the whole pipeline on `--model-passages` XQuAD passages with generation and grading on the real
   llama.cpp server (a fresh call cache): model seconds per passage for generate and refine.
2. Our own cost on `--passages` passages: read+segment+filter XQuAD contexts in 11 languages, parse and check the
   server's real candidate answers (cycled to 3 per passage), parse its real grader answers, embed+cluster, write
   1,000 SFT rows; every step on real text. Printed as seconds and as a ratio to the model seconds the same
   passages would need (from 1).
3. Embedding + k-means of `--instructions` English instructions (Alpaca), against the 3-minute budget; with
   `--before N` also the earlier settings in the same run (k-means++ with n_init=3 on the same vectors, and the
   earlier embedding calls on the first N texts), with the k-means objective and the embeddings' cosine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from crosstune.data.blocks import ExclusionSink, Row  # noqa: E402
from crosstune.data.schema import Example, Message  # noqa: E402
from crosstune.data.xinstruct.config import DiversifyConfig, GenerateConfig, SegmentConfig, SourceSpec, WriteConfig  # noqa: E402,E501
from crosstune.data.xinstruct.diversify import Diversify  # noqa: E402
from crosstune.data.xinstruct.generate import CandidateChecks, parse_instruction  # noqa: E402
from crosstune.data.xinstruct.read import ReadSegment, passage_filters, read_documents  # noqa: E402
from crosstune.data.xinstruct.refine import parse_grade  # noqa: E402
from crosstune.data.xinstruct.runner import _write, plan_xinstruct, run_xinstruct  # noqa: E402
from crosstune.data.xinstruct.write import ToSFT  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
XQUAD = ["ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]


def model_peer(server: str, n: int, out: Path) -> dict:
    cfg = REPO / "configs" / "xinstruct" / "xquad_demo.yaml"
    plan = plan_xinstruct(cfg, [f"limit={n}", f"model.backend={server}", f"model.cache={out / 'calls.sqlite'}",
                                "segment.max_chars=700", "generate.max_new_tokens=40"])
    res = run_xinstruct(plan, out / "peer")
    return {"passages": res.manifest["counts"]["passages"], "run": res.run}


def own_cost(n: int, peer_dir: Path, out: Path) -> dict:
    t: dict[str, float] = {}
    seg = SegmentConfig()
    t0 = time.perf_counter()
    per = -(-n // len(XQUAD))
    sources = []
    for lang in XQUAD:
        spec = SourceSpec(language=lang, path=str(DATA / "xquad" / f"xquad.{lang}.json"))
        sources.append((spec, read_documents(spec)[0]))
    sink = ExclusionSink()
    stream = None
    for b in [ReadSegment(sources, seg, per), *passage_filters(seg, XQUAD)]:
        stream = b.run(stream, sink)
    passages = list(islice(stream, n))
    t["read_segment_filter"] = time.perf_counter() - t0

    cands = [json.loads(x)["raw"] for x in (peer_dir / "candidates.jsonl").read_text().splitlines()]
    grades = [json.loads(x)["raw"] for x in (peer_dir / "grades.jsonl").read_text().splitlines()] or ["good"]
    check = CandidateChecks(GenerateConfig())
    t0 = time.perf_counter()
    raws = cycle(cands)
    kept = 0
    for row in passages:
        seen: set[str] = set()
        for raw in islice(raws, 3):
            text = parse_instruction(raw)
            if check(text, row.example.response.content, seen) is None:
                seen.add(text.lower())
                kept += 1
    t["generate_parse_check"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for raw in islice(cycle(grades), 3 * n):
        parse_grade(raw)
    t["refine_parse"] = time.perf_counter() - t0

    instructions = _alpaca(n)
    rows = [Row(Example(id=f"{r.example.id}/c0", messages=[Message("user", ins, "en"), r.example.messages[0]],
                        meta=dict(r.example.meta))) for r, ins in zip(passages, instructions)]
    div = Diversify(DiversifyConfig(keep_fraction=0.5))
    picked = list(div.run(rows, ExclusionSink()))
    t["embed"], t["cluster"] = div.seconds["embed_s"], div.seconds["cluster_s"]
    t0 = time.perf_counter()
    final = list(ToSFT(WriteConfig()).run(picked, ExclusionSink()))
    _write(out / "own", final, sink, {"bench": True})
    t["write"] = time.perf_counter() - t0
    return {"passages": len(passages), "candidates_checked": 3 * len(passages), "kept": kept,
            "rows_written": len(final), "seconds": {k: round(v, 3) for k, v in t.items()},
            "total_s": round(sum(t.values()), 3)}


def _alpaca(n: int) -> list[str]:
    path = DATA / "alpaca_chinese_parallel" / "alpaca_en_zh_52k_v3.jsonl.gz"
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            ins = json.loads(line)["en_instruction"]
            if ins not in out[-50:]:
                out.append(ins)
            if len(out) >= n:
                break
    return out


def embed_cluster(n: int, keep_fraction: float, before: int, threads: int = 1) -> dict:
    """Embed + cluster `n` instructions with the shipped settings; then the same-run peers: the earlier embedding
    (calls of 256 texts in input order, on the first `before` texts) and the earlier k-means (k-means++ with
    n_init=3) on the same vectors: seconds, the k-means objective, and the largest embedding difference."""
    import numpy as np

    from crosstune.data.xinstruct.diversify import cluster_pick

    instructions = _alpaca(n)
    rows = [Row(Example(id=str(i), messages=[Message("user", s, "en"), Message("assistant", "x", "en")]))
            for i, s in enumerate(instructions)]
    cfg = DiversifyConfig(keep_fraction=keep_fraction, by_language=False, threads=threads)
    load0 = os.getloadavg()
    div = Diversify(cfg)
    t0 = time.perf_counter()
    kept = list(div.run(rows, ExclusionSink()))
    total = time.perf_counter() - t0
    k = div.report()["k"]["all"]
    res = {"instructions": len(rows), "threads": threads, "k": k, "kept": len(kept), "kmeans": {"init": cfg.init, "n_init": cfg.n_init},
           "embed_s": round(div.seconds["embed_s"], 1), "cluster_s": round(div.seconds["cluster_s"], 1),
           "total_s": round(total, 1), "budget_s": 180, "within_budget": total < 180,
           "load_avg_start": [round(v, 2) for v in load0], "load_avg_end": [round(v, 2) for v in os.getloadavg()]}
    if not before:
        return res
    x = div.embedder.embed(instructions)  # the vectors k-means saw (the embedder is deterministic)
    res["inertia"] = round(_inertia(x, cluster_pick, k, cfg), 2)
    t0 = time.perf_counter()
    peer = _inertia(x, cluster_pick, k, cfg.model_copy(update={"init": "k-means++", "n_init": 3}))
    res["peer_cluster_s"] = round(time.perf_counter() - t0, 1)
    res["peer_inertia"] = round(peer, 2)
    sub = instructions[:before]
    t0 = time.perf_counter()
    old = np.concatenate([div.embedder._model.query(sub[i:i + 256]) for i in range(0, len(sub), 256)])
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = div.embedder.embed(sub)
    t_new = time.perf_counter() - t0
    res["embed_peer"] = {"texts": len(sub), "before_s": round(t_old, 1), "after_s": round(t_new, 1),
                         "ratio": round(t_old / t_new, 2), "min_cosine": round(float((old * new).sum(1).min()), 6)}
    res["load_avg_after_peers"] = [round(v, 2) for v in os.getloadavg()]
    return res


def _inertia(x, cluster_pick, k: int, cfg: DiversifyConfig) -> float:
    """The k-means objective of one clustering with these settings (sum of squared distances to the centres)."""
    labels, _ = cluster_pick(x, k, cfg.per_cluster, cfg.seed, cfg)
    centres = {c: x[labels == c].mean(0) for c in set(labels.tolist())}
    return float(sum(((x[labels == c] - m) ** 2).sum() for c, m in centres.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="openai:MODEL@URL of a running llama.cpp server")
    ap.add_argument("--model-passages", type=int, default=16)
    ap.add_argument("--passages", type=int, default=1000)
    ap.add_argument("--instructions", type=int, default=10000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--peer-dir", default=None, help="use a finished `crosstune data xinstruct` run on the server "
                                                     "as the peer instead of running one")
    ap.add_argument("--call-seconds", default=None, help="GEN,JUDGE seconds per model call measured in a logged run "
                                                         "(when the peer dir's last run was answered from the cache)")
    ap.add_argument("--keep-fraction", type=float, default=0.5, help="10k run: k = n x this (k: auto, 1 per cluster)")
    ap.add_argument("--before", type=int, default=0, help="10k run: also the earlier settings in the same run "
                                                           "(k-means on all n; embedding on this many texts)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["peer", "own", "embed"])
    ap.add_argument("--threads", type=int, default=1, help="10k run: diversify.threads (embedding and k-means)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_xinstruct_"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    peer_dir = Path(a.peer_dir) if a.peer_dir else out / "peer"
    if "peer" not in a.skip and not a.peer_dir:
        result["peer"] = model_peer(a.server, a.model_passages, out)
        print(json.dumps(result["peer"], indent=1))
    if "own" not in a.skip:
        peer = json.loads((peer_dir / "run.json").read_text())
        npass = json.loads((peer_dir / "manifest.json").read_text())["counts"]["passages"]
        # seconds per model call of the calls this run made, times every request the passages needed
        # (a resumed run answered some from the cache)
        blocks = {b: peer["blocks"][b] for b in ("generate", "refine")}
        if a.call_seconds:
            per_call = dict(zip(blocks, map(float, a.call_seconds.split(","))))
        else:
            per_call = {k: b["model_seconds"] / b["calls"] if b["calls"] else 0.0 for k, b in blocks.items()}
        model_s = sum(per_call[k] * (b["calls"] + b["hits"]) for k, b in blocks.items())
        result["peer_used"] = {"dir": str(peer_dir), "passages": npass,
                               "s_per_call": {k: round(v, 2) for k, v in per_call.items()},
                               "requests": {k: b["calls"] + b["hits"] for k, b in blocks.items()}}
        own = own_cost(a.passages, peer_dir, out)
        own["model_s_per_passage"] = round(model_s / npass, 2)
        own["model_s_for_same_passages"] = round(model_s / npass * own["passages"], 1)
        own["own_over_model"] = round(own["total_s"] / own["model_s_for_same_passages"], 5)
        result["own"] = own
        print(json.dumps(own, indent=1))
    if "embed" not in a.skip:
        result["embed"] = embed_cluster(a.instructions, a.keep_fraction, a.before, a.threads)
        print(json.dumps(result["embed"], indent=1))
    (out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {out / 'bench.json'}")


if __name__ == "__main__":
    main()
