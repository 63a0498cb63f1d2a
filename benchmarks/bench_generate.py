"""Benchmark: crosstune's batched KV-cache generation vs transformers' `generate` one prompt at a time, same
greedy outputs, in one run.

Both decode the same chat prompts (HPLT's 11-language OASST prompts when ../shared/data is present, else built-in
ones) with the same model (default SmolLM2-135M, fp32), greedy, `--max-new-tokens`. The peer is
`model.generate(ids, do_sample=False)` per prompt, no padding; crosstune is `HFGenerator.generate` with
`--batch-size`. They run interleaved, one batch's prompts at a time (peer on those prompts one by one, then
crosstune on the batch), so load changes on a shared machine hit both alike. The outputs are compared
token for token and the benchmark fails when they differ (`--allow-mismatch` reports instead). For Llama-architecture
models crosstune decodes with continuous batching on a static KV pool (`hf_decode`); its prefill seconds (prompts
packed into forwards, a shared chat-template prefix computed once) are reported apart.

`--decode-dtype bfloat16` skips the peer: it runs crosstune's float32 decode and its bf16 decode on the same prompts
(interleaved) and reports their agreement (identical outputs, and the share of tokens before the first difference)
and the speed ratio.

    python benchmarks/bench_generate.py --n 16 --batch-size 16 --max-new-tokens 64 --threads 1
    python benchmarks/bench_generate.py --n 16 --batch-size 16 --max-new-tokens 64 --threads 1 --decode-dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from crosstune.models.backends.base import GenerateRequest  # noqa: E402
from crosstune.models.backends.hf_generate import HFGenerator  # noqa: E402
from crosstune.models.loading import load_model, load_tokenizer  # noqa: E402

HPLT = Path(__file__).resolve().parents[2] / "shared" / "data" / "hplt_oasst_multilingual_test"
LANGS = ["en", "bg", "bn", "cs", "es", "fi", "fr", "hi", "no", "ru", "zh"]
FALLBACK = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
            "¿Cuál es la montaña más alta del mundo?", "Nenne drei Programmiersprachen.", "如何学习一门新语言？",
            "Give me a recipe for pancakes.", "Quelle est la différence entre un virus et une bactérie ?"]


def load_prompts(n: int) -> list[str]:
    if HPLT.is_dir():
        per_lang = [[json.loads(x)["prompt"] for x in (HPLT / f"test_{lang}.jsonl").read_text().splitlines()[:49]]
                    for lang in LANGS]
        mixed = [rows[i] for i in range(49) for rows in per_lang]  # round-robin over languages
        return mixed[:n]
    return (FALLBACK * (n // len(FALLBACK) + 1))[:n]


def peer_generate(model, tok, gen: HFGenerator, prompt: str, max_new: int) -> list[int]:
    ids = torch.tensor([gen.render([{"role": "user", "content": prompt}])])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                         pad_token_id=gen.pad_id, temperature=None, top_p=None, top_k=None)
    new = out[0, ids.shape[1]:].tolist()
    return new[:next((i for i, t in enumerate(new) if t in gen.eos_ids.tolist()), len(new))]


def prefill_timer(gen: HFGenerator) -> list[float]:
    """Seconds crosstune spends prefilling (prompts packed into forwards), counted in [0]."""
    spent = [0.0]
    lean = gen.lean_decoder()
    if lean is not None:
        inner = lean.prefill

        def timed(*args):
            t = time.perf_counter()
            out = inner(*args)
            spent[0] += time.perf_counter() - t
            return out
        lean.prefill = timed
    return spent


def compare_dtypes(a, model, tok, gen: HFGenerator, prompts: list[str]) -> None:
    """float32 vs `--decode-dtype` decoding by crosstune, interleaved per batch: agreement and speed."""
    other = HFGenerator(model, tok, batch_size=a.batch_size, decode_dtype=a.decode_dtype)
    reqs = [GenerateRequest([{"role": "user", "content": p}], a.max_new_tokens) for p in prompts]
    for g in (gen, other):  # warm-up (packs the weights), then count from zero
        g.generate([GenerateRequest(reqs[0].prompt, 4)])
        g.tokens_generated = 0
    texts: dict[str, list[str]] = {"float32": [], a.decode_dtype: []}
    secs = dict.fromkeys(texts, 0.0)
    for s in range(0, len(reqs), a.batch_size):
        for name, g in (("float32", gen), (a.decode_dtype, other)):
            t = time.perf_counter()
            texts[name] += g.generate(reqs[s:s + a.batch_size])
            secs[name] += time.perf_counter() - t
    ref, alt = ([tok.encode(x, add_special_tokens=False) for x in texts[k]] for k in texts)
    agree = [next((i for i, (x, y) in enumerate(zip(r, o)) if x != y), min(len(r), len(o))) for r, o in zip(ref, alt)]
    res = {"model": a.model, "prompts": len(prompts), "batch_size": a.batch_size, "max_new_tokens": a.max_new_tokens,
           "threads": a.threads, "decode_dtype": a.decode_dtype,
           "same_outputs": f"{sum(x == y for x, y in zip(*texts.values()))}/{len(prompts)}",
           "tokens_before_first_difference": f"{sum(agree)}/{sum(len(r) for r in ref)}",
           "float32_tok_s": round(gen.tokens_generated / secs["float32"], 1),
           f"{a.decode_dtype}_tok_s": round(other.tokens_generated / secs[a.decode_dtype], 1),
           "load_avg": os.getloadavg()[0]}
    print(json.dumps(res, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--allow-mismatch", action="store_true")
    ap.add_argument("--decode-dtype", choices=["bfloat16"], help="compare crosstune's bf16 decode with its float32")
    ap.add_argument("--out", type=Path, help="write the numbers as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok, model = load_tokenizer(a.model), load_model(a.model)
    model.eval()
    gen = HFGenerator(model, tok, batch_size=a.batch_size)
    prompts = load_prompts(a.n)
    if a.decode_dtype:
        return compare_dtypes(a, model, tok, gen, prompts)
    with torch.inference_mode():  # warm-up, both paths
        peer_generate(model, tok, gen, prompts[0], 4)
        gen.generate([GenerateRequest([{"role": "user", "content": prompts[0]}], 4)])
    prefill = prefill_timer(gen)
    peer_tokens: list[list[int]] = []
    ours_text: list[str] = []
    t_peer = t_ours = 0.0
    tokens_ours = 0
    for s in range(0, len(prompts), a.batch_size):
        chunk = prompts[s:s + a.batch_size]
        t = time.perf_counter()
        with torch.inference_mode():
            peer_tokens += [peer_generate(model, tok, gen, p, a.max_new_tokens) for p in chunk]
        t_peer += time.perf_counter() - t
        before = gen.tokens_generated
        t = time.perf_counter()
        ours_text += gen.generate([GenerateRequest([{"role": "user", "content": p}], a.max_new_tokens) for p in chunk])
        t_ours += time.perf_counter() - t
        tokens_ours += gen.tokens_generated - before
        print(f"  {s + len(chunk)}/{len(prompts)} prompts: peer {t_peer:.1f}s, crosstune {t_ours:.1f}s", flush=True)
    peer_text = [tok.decode(t, skip_special_tokens=True) for t in peer_tokens]
    same = sum(x == y for x, y in zip(peer_text, ours_text))
    tokens_peer = sum(len(t) for t in peer_tokens)
    res = {"model": a.model, "prompts": len(prompts), "batch_size": a.batch_size, "max_new_tokens": a.max_new_tokens,
           "threads": a.threads, "same_outputs": f"{same}/{len(prompts)}",
           "peer_tokens": tokens_peer, "peer_seconds": round(t_peer, 2), "peer_tok_s": round(tokens_peer / t_peer, 1),
           "ours_tokens": tokens_ours, "ours_seconds": round(t_ours, 2), "ours_tok_s": round(tokens_ours / t_ours, 1),
           "speedup": round((tokens_ours / t_ours) / (tokens_peer / t_peer), 2),
           "ours_prefill_seconds": round(prefill[0], 2) if gen.lean_decoder() else None,
           "load_avg": os.getloadavg()[0]}
    print(json.dumps(res, indent=1))
    print(f"crosstune batched generation: {res['ours_tok_s']} tok/s vs HF generate one at a time "
          f"{res['peer_tok_s']} tok/s = {res['speedup']}x (batch {a.batch_size}); same greedy outputs {same}/{len(prompts)}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    if same != len(prompts):
        for i, (x, y) in enumerate(zip(peer_text, ours_text)):
            if x != y:
                print(f"  differs at prompt {i}: peer {x[:80]!r} vs ours {y[:80]!r}")
        if not a.allow_mismatch:
            sys.exit(1)


if __name__ == "__main__":
    main()
