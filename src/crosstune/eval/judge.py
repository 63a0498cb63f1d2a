"""Pairwise LLM judging of two generation runs (Pinch side-by-side, X-Instruction 0-10), both orders, through the cache.

A and B are generation runs joined on (id, language, sample); `--b LANG=DIR` (repeatable) gives each language its
own reference model, as Pinch's IF_L needs. Every pair is judged twice ("ab": A shown first; "ba": B first); all
calls go through `CachedBackend`, so a rerun makes no calls and a killed run resumes. Beside the scores, always:
parse failures (counted, never guessed), the judge's position bias (flip rate, which position it prefers),
bootstrap 95% intervals per language, and the language gate (a response not detected in the expected language
loses to one that is; both wrong or both right leave the judge's verdict), with gated and ungated scores.
Under `accelerate launch` / `torchrun` each process judges every n-th pair (`crosstune.distributed`) and process 0
writes the results: the same files as one process; a killed run's finished verdicts are in the shared cache.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from crosstune import distributed
from crosstune.errors import CrosstuneError
from crosstune.eval import judge_protocols as jp
from crosstune.eval import rundir
from crosstune.eval.fidelity import bootstrap_ci, build_detector, check_supported, load_generations
from crosstune.models.backends import GenerateRequest

ORDERS = ("ab", "ba")
CHUNK = 16  # judge requests per cache round trip (progress and partial results)


def _key(row: dict) -> tuple[str, str, int]:
    return str(row["id"]), str(row["language"]), int(row.get("sample", 0))


def _index(rows: list[dict], source: str) -> dict:
    out = {}
    for row in rows:
        k = _key(row)
        if k in out:
            raise CrosstuneError(f"{source}: (id {k[0]!r}, language {k[1]}, sample {k[2]}) appears twice")
        out[k] = row
    return out


def _describe(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(f"(id {k[0]!r}, {k[1]}, sample {k[2]})" for k in keys[:5])
    return f"{len(keys)} rows: {shown}{' ...' if len(keys) > 5 else ''}"


def load_b(specs: list[str]) -> tuple[dict, list[str]]:
    """`DIR` or `LANG=DIR` (repeatable): rows of the reference run(s); a LANG= run only serves that language."""
    from crosstune.languages import normalize

    rows, sources = {}, []
    for spec in specs:
        lang, sep, path = spec.partition("=")
        if sep and not Path(spec).exists():
            lang = normalize(lang)
        else:
            lang, path = None, spec
        got = [r for r in load_generations(path) if lang is None or normalize(r["language"]) == lang]
        if lang and not got:
            raise CrosstuneError(f"--b {spec}: no rows in language {lang}")
        for k, r in _index(got, path).items():
            if k in rows:
                raise CrosstuneError(f"--b {spec}: (id {k[0]!r}, {k[1]}, sample {k[2]}) is also in another --b run")
            rows[k] = r
        sources.append(spec)
    return rows, sources


def join_runs(a_path: str, b_specs: list[str], limit: int | None = None) -> list[tuple[dict, dict]]:
    """Pairs (A row, B row) on (id, language, sample); any row without a partner is an error naming it.
    `limit`: only the first N pairs of each language (in key order)."""
    a = _index(load_generations(a_path), str(a_path))
    b, _ = load_b(b_specs)
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"in A ({a_path}) but not in B: {_describe(only_a)}")
        if only_b:
            parts.append(f"in B ({', '.join(b_specs)}) but not in A: {_describe(only_b)}")
        raise CrosstuneError("the runs do not cover the same prompts; " + "; ".join(parts) +
                             ". Generate both with the same --prompts/--limit/--samples.")
    pairs, per_lang = [], Counter()
    for k in sorted(a):
        per_lang[k[1]] += 1
        if limit is None or per_lang[k[1]] <= limit:
            pairs.append((a[k], b[k]))
    return pairs


def judge_identity(spec: str, backend) -> str:
    """What the cache keys judge calls by: the backend's fingerprint, else its spec (weights hash for local)."""
    fp = getattr(backend, "fingerprint", None)
    if fp:
        return fp
    from crosstune.models.backends import parse_spec

    cfg = parse_spec(spec)
    if cfg.get("kind") == "openai":
        return f"openai:{cfg['model']}@{cfg['base_url']}"
    from crosstune.models.fingerprint import model_fingerprint
    from crosstune.models.loading import resolve_model

    return model_fingerprint(resolve_model(cfg["model"]))


def build_requests(pairs, protocol: jp.Protocol, prompt: jp.Prompt, max_new_tokens: int | None = None
                   ) -> list[GenerateRequest]:
    from crosstune.languages import language_name

    requests, n_new = [], max_new_tokens or protocol.max_new_tokens
    for a, b in pairs:
        lang = language_name(a.get("expected_language") or a["language"])
        for order in ORDERS:
            first, second = (a, b) if order == "ab" else (b, a)
            messages = prompt.render(lang, a["prompt"], first["response"], second["response"])
            requests.append(GenerateRequest(prompt=messages, max_new_tokens=n_new,
                                            temperature=0.0, seed=0))
    return requests


def call_judge(backend, requests: list[GenerateRequest], label: str = "judging") -> list[str]:
    """All requests through the cached backend, in chunks with a progress bar; a failure keeps what came back."""
    from rich.progress import Progress

    from crosstune.console import console

    results: list[str] = []
    with Progress(console=console, transient=True, disable=not requests) as bar:
        task = bar.add_task(label, total=len(requests))
        for i in range(0, len(requests), CHUNK):
            before = backend.calls
            try:
                results += backend.generate(requests[i:i + CHUNK])
            except CrosstuneError as e:
                cached = len(results) + backend.calls - before
                raise CrosstuneError(f"{e}; judge requests {i + 1}..{min(i + CHUNK, len(requests))} of "
                                     f"{len(requests)} did not all come back; {cached} answers are cached, rerun the "
                                     "same command to resume") from None
            bar.update(task, advance=len(requests[i:i + CHUNK]))
    return results


def judge_split(backend, requests: list[GenerateRequest], st: distributed.State) -> list[str]:
    """`call_judge` over this process's pairs (every n-th; the two orders of a pair stay together); every process
    returns all answers in request order."""
    mine = distributed.my_share(range(len(requests) // len(ORDERS)), st)
    if st.is_main and st.world > 1:
        from crosstune.console import console

        console.print(f"[dim]judge: {distributed.share_line(len(requests) // len(ORDERS), 'pairs', st)}[/dim]")
    index = [len(ORDERS) * p + j for p in mine for j in range(len(ORDERS))]
    got = call_judge(backend, [requests[i] for i in index], f"judging{st.tag()}")
    raw: list[str] = [""] * len(requests)
    for part_index, part in st.gather((index, got)):
        for i, text in zip(part_index, part):
            raw[i] = text
    return raw


def gate(outcome: str | None, a_ok: bool, b_ok: bool) -> str | None:
    """Exactly one response in the expected language: it wins. Otherwise the judge's outcome stands."""
    if a_ok and not b_ok:
        return "win"
    if b_ok and not a_ok:
        return "loss"
    return outcome


def judge_pairs(pairs, raw: list[str], protocol: jp.Protocol, in_lang: list[tuple[bool, bool]]) -> list[dict]:
    items = []
    for n, ((a, b), (a_ok, b_ok)) in enumerate(zip(pairs, in_lang)):
        orders, parsed = {}, {}
        for j, order in enumerate(ORDERS):
            text = raw[2 * n + j]
            p, err = protocol.parse(text)
            orders[order] = {"raw": text, "parsed": p, "error": err,
                             "preferred_position": jp.preferred_position(protocol.name, p) if p else None}
            if p:
                parsed[order] = p
        item = {"id": a["id"], "language": a["language"], "sample": a.get("sample", 0),
                "expected": a.get("expected_language") or a["language"], "prompt": a["prompt"],
                "response_a": a["response"], "response_b": b["response"], "orders": orders,
                "a_in_language": a_ok, "b_in_language": b_ok}
        result = jp.pair_outcome(protocol.name, parsed) if len(parsed) == 2 else {"outcome": None, "flip": None}
        item.update(result)
        item["gated_outcome"] = gate(item["outcome"], a_ok, b_ok)
        if protocol.name == "xinstruct" and "score_a" in result:
            item["gated_score_a"] = result["score_a"] if a_ok or not b_ok else 0.0
            item["gated_score_b"] = result["score_b"] if b_ok or not a_ok else 0.0
        items.append(item)
    return items


def _scores(items, key: str, n_boot: int, seed: int) -> dict:
    outcomes = [it[key] for it in items if it[key] is not None]
    values = [jp.OUTCOME_SCORE[o] for o in outcomes]
    c = Counter(outcomes)
    ci = bootstrap_ci(values, n_boot, seed)
    return {"n": len(values), "score": round(100 * sum(values) / len(values), 2) if values else None,
            "score_95": [round(100 * x, 2) for x in ci] if ci else None,
            "win": c["win"], "tie": c["tie"], "loss": c["loss"]}


def binomial_p(k: int, n: int) -> float | None:
    """Two-sided exact binomial test of k successes in n against p = 0.5 (no position preference)."""
    if n == 0:
        return None
    from math import comb

    ref = comb(n, k)
    return min(1.0, sum(comb(n, i) for i in range(n + 1) if comb(n, i) <= ref) / 2 ** n)


def position_bias(items) -> dict:
    """How often the verdict flips with the order, and which displayed position the judge prefers."""
    pos = Counter(o["preferred_position"] for it in items for o in it["orders"].values() if o["preferred_position"])
    decided = pos["first"] + pos["second"]
    flips = [it["flip"] for it in items if it["flip"] is not None]
    share = pos["first"] / decided if decided else None
    favours = None if share is None else "first" if share > 0.5 else "second" if share < 0.5 else "neither"
    return {"verdicts": sum(pos.values()), "first": pos["first"], "second": pos["second"], "tie": pos["tie"],
            "first_share": round(share, 4) if share is not None else None, "favours": favours,
            "p_value": (float(f"{p:.3g}") if (p := binomial_p(pos["first"], decided)) is not None else None),
            "pairs_both_parsed": len(flips), "flips": sum(flips),
            "flip_rate": round(sum(flips) / len(flips), 4) if flips else None}


def parse_failures(items) -> dict:
    per_order = {o: sum(it["orders"][o]["parsed"] is None for it in items) for o in ORDERS}
    reasons = Counter(it["orders"][o]["error"] for it in items for o in ORDERS if it["orders"][o]["error"])
    examples = [{"id": it["id"], "language": it["language"], "order": o, "error": it["orders"][o]["error"],
                 "raw": it["orders"][o]["raw"][:200]}
                for it in items for o in ORDERS if it["orders"][o]["error"]][:5]
    return {"verdicts": 2 * len(items), "failed": sum(per_order.values()), "per_order": per_order,
            "pairs_excluded": sum(it["outcome"] is None for it in items), "reasons": dict(reasons.most_common(10)),
            "examples": examples}


def _means(items, prefix: str = "") -> dict:
    got = [it for it in items if f"{prefix}score_a" in it]
    if not got:
        return {}
    return {f"{prefix}mean_a": round(sum(it[f"{prefix}score_a"] for it in got) / len(got), 3),
            f"{prefix}mean_b": round(sum(it[f"{prefix}score_b"] for it in got) / len(got), 3)}


def summarize(items, protocol: str, gate_on: bool, n_boot: int = 1000, seed: int = 0) -> dict:
    by_lang = defaultdict(list)
    for it in items:
        by_lang[it["expected"]].append(it)

    def block(group):
        ungated, gated = _scores(group, "outcome", n_boot, seed), _scores(group, "gated_outcome", n_boot, seed)
        return {"pairs": len(group), "score": (gated if gate_on else ungated)["score"],
                "ungated": {**ungated, **_means(group)},
                "gated": {**gated, **_means(group, "gated_")}, "position_bias": position_bias(group),
                "parse_failures": parse_failures(group)["failed"],
                "a_wrong_language": sum(not it["a_in_language"] for it in group),
                "b_wrong_language": sum(not it["b_in_language"] for it in group)}

    return {"protocol": protocol, "n_pairs": len(items), "gate": gate_on,
            "score_meaning": "A vs B in %: win 1, tie .5, loss 0 (Pinch S×S; IF_L when B is L's reference)",
            "overall": block(items), "per_language": {lang: block(g) for lang, g in sorted(by_lang.items())},
            "position_bias": position_bias(items), "parse_failures": parse_failures(items)}


def run_judge(judge: str, a: str, b: list[str], protocol: str, out_dir: str | Path, **options) -> dict:
    """Join A and B, judge every pair in both orders, write items.jsonl and summary.json (the table is the
    report's: `crosstune.report.evaluation.write_judge_report`). A second judge on this --out refuses at once
    instead of repeating the calls; the processes of one launch share process 0's lock."""
    with rundir.run_lock(out_dir, "eval judge", distributed.state().is_main):
        return _run_judge(judge, a, b, protocol, out_dir, **options)


def _run_judge(judge: str, a: str, b: list[str], protocol: str, out_dir: str | Path, *, prompt_file=None,
               gate_mode: str = "auto", lid: str = "fasttext", cache_path=None, n_boot: int = 1000,
               seed: int = 0, max_new_tokens: int | None = None, limit: int | None = None,
               concurrency: int | None = None) -> dict:
    from crosstune.console import console
    from crosstune.eval import lcpr
    from crosstune.models.backends import cached_backend

    if concurrency is not None and concurrency < 1:
        raise CrosstuneError(f"--concurrency {concurrency}: expected 1 or more (requests in flight per process)")
    proto = jp.get_protocol(protocol)
    prompt = jp.load_prompt(protocol, prompt_file)
    if gate_mode not in ("auto", "on", "off"):
        raise CrosstuneError(f"--gate {gate_mode!r}: expected auto, on or off")
    pairs = join_runs(a, b, limit)
    if not pairs:
        raise CrosstuneError(f"{a}: no generation rows to judge")
    cross = any(lcpr.base_language(p[0].get("expected_language") or p[0]["language"]) != "en" for p in pairs)
    gate_on = gate_mode == "on" or (gate_mode == "auto" and cross)
    detector = build_detector(lid)
    gate_note = None
    try:
        check_supported([ra for ra, _ in pairs], detector, str(a))
    except CrosstuneError as e:
        if gate_on:
            raise CrosstuneError(f"language gate: {e}; or --gate off") from None
        gate_note = f"gate not computed: {e}"
    in_lang = []
    for ra, rb in pairs:
        if gate_note:
            in_lang.append((True, True))
            continue
        want = ra.get("expected_language") or ra["language"]
        in_lang.append(tuple(lcpr.check_response(r["response"], want, detector).detected == lcpr.base_language(want)
                             for r in (ra, rb)))
    requests = build_requests(pairs, proto, prompt, max_new_tokens)
    from crosstune.models.backends import parse_spec

    http = parse_spec(judge).get("kind") == "openai"
    backend = cached_backend(judge, cache_path, fingerprint=lambda raw: judge_identity(judge, raw),
                             **({"concurrency": concurrency} if http else {}))
    st = distributed.state()
    calls0, hits0 = backend.calls, backend.hits
    raw = judge_split(backend, requests, st)
    counts = st.sum({"calls": backend.calls - calls0, "hits": backend.hits - hits0})
    items = judge_pairs(pairs, raw, proto, in_lang)
    summary = summarize(items, protocol, gate_on, n_boot, seed)
    summary.update({"judge": judge, "a": str(a), "b": list(b), "prompt": prompt.source, "lid": lid,
                    "max_new_tokens": max_new_tokens or proto.max_new_tokens,
                    "calls": counts["calls"], "cache_hits": counts["hits"],
                    "prompts_differ": sum(pa["prompt"] != pb["prompt"] for pa, pb in pairs), "gate_note": gate_note})
    if st.is_main:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rundir.write_rows(out / "items.jsonl", items)
        rundir.write_json(out / "summary.json", summary)
        console.print(f"wrote {out}/items.jsonl and summary.json ({counts['calls']} judge calls, "
                      f"{counts['hits']} from the cache)")
    st.barrier()
    return summary
