"""`crosstune data translate`: source rows -> engine (cached) -> quality signals -> parallel.jsonl, excluded.jsonl,
manifest.json (deterministic: counts, settings, signal distributions) and run.json (this run's calls and speed).

Everything that can be checked is checked before the first engine call: config, source path, fields, ids, and
that the engine has every language pair. A killed run resumes from the call cache: the rerun sends only the
segments that had not come back, and a complete rerun sends none.

Under `accelerate launch` or `torchrun` the processes split the segments the cache lacks (`split.SplitTranslator`:
the same batches one process would send, so the same translations); process 0 alone writes the outputs, which are
the one-process outputs byte for byte, and `run.json` sums the calls over the processes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from crosstune.config import apply_overrides, config_hash, read_yaml, validate
from crosstune.console import console
from crosstune.data.io import dumps_row
from crosstune.data.translate.cache import SegmentCache
from crosstune.data.translate.config import TranslateConfig
from crosstune.data.translate.engines import build_engine
from crosstune.data.translate.pipeline import TextTranslator
from crosstune.data.translate.protect import compile_spans
from crosstune.data.translate.split import SplitTranslator
from crosstune.data.translate.signals import LidScorer, measure_row, round_trip_chrf, summarize, verdict
from crosstune.data.translate.source import SourceRow, read_source
from crosstune.distributed import share_line, state
from crosstune.errors import CrosstuneError
from crosstune.paths import Lookup
from crosstune.models.cache import CallCache


@dataclass
class Plan:
    config: TranslateConfig
    config_path: str
    source_path: Path
    engine: object
    cache: CallCache
    rows: list[SourceRow]
    layout: str


def plan_translate(path: str | Path, overrides: list[str] | None = None, data_root: str | None = None) -> Plan:
    """Validate the config, read and check the source rows, build the engine and check every language pair (no
    model loaded except a tokenizer for hf engines)."""
    cfg = validate(TranslateConfig, apply_overrides(read_yaml(path), overrides or []), str(path))
    source_path = Lookup(path, data_root)(cfg.source.path, "source.path")  # the data-root rule (crosstune.paths)
    rows, layout = read_source(cfg, source_path)
    cache = CallCache(cfg.cache)
    engine = build_engine(cfg.engine, cache)
    for lang in cfg.languages:
        if lang == cfg.source.language:
            raise CrosstuneError(f"{path}: field 'languages': {lang} is the source language")
        try:
            engine.check_pair(cfg.source.language, lang)
        except CrosstuneError as e:
            raise CrosstuneError(f"{path}: field 'languages': {e}") from None
    return Plan(cfg, str(path), source_path, engine, cache, rows, layout)


class _Tracked:
    """Shows a translator's progress on a rich task: the total grows by each batch of distinct segments before they
    are sent; the rate column counts engine calls per second (cache hits apart)."""

    def __init__(self, inner, progress, label: str):
        self.inner, self.progress = inner, progress
        self.task = progress.add_task(label, total=0, rate="")
        self.t0 = time.perf_counter()
        self.calls0, self.hits0 = inner.calls, inner.hits  # counted over the task's life

    def translate_iter(self, texts, source, target):
        task = self.progress.tasks[self.task]
        self.progress.update(self.task, total=task.total + len(texts))
        for item in self.inner.translate_iter(texts, source, target):
            dt = time.perf_counter() - self.t0
            calls = self.inner.calls - self.calls0
            self.progress.update(self.task, advance=1, rate=f"{calls / dt if dt else 0:.1f} engine calls/s, "
                                                            f"{self.inner.hits - self.hits0} cached")
            yield item


def run_translate(plan: Plan, out_dir: str | Path) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    cfg, engine = plan.config, plan.engine
    t0 = time.perf_counter()
    rows, layout = plan.rows, plan.layout
    st = state()
    base = engine if engine.cached else SegmentCache(engine, plan.cache)
    translator = SplitTranslator(base, st, cfg.engine.batch_size, engine.measure) if st.world > 1 else base
    pattern = compile_spans(cfg.protect)
    src = cfg.source.language
    excluded: list[dict] = []
    outputs: dict[str, dict[str, dict]] = {}  # lang -> id -> translated fields
    signals: dict[str, dict[str, dict]] = {}
    summaries, per_lang = {}, {}
    segments = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[cyan]{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())
    live = [r for r in rows if not r.missing]
    for r in rows:
        for lang in cfg.languages if r.missing else ():
            excluded.append({"id": r.id, "language": lang, "reason": "missing_field",
                             "detail": f"line {r.line}: no {', '.join(cfg.source.prefix + f for f in r.missing)}"})
    with Progress(*columns, console=console, transient=False, refresh_per_second=4,
                  disable=not st.is_main) as progress:
        for lang in cfg.languages:
            tt = TextTranslator(_Tracked(translator, progress, f"{src}->{lang}"), engine.limit,
                                engine.measure, pattern, cfg.segment == "sentence", cfg.keep_code)
            texts = list(dict.fromkeys(r.fields[k] for r in live for k in r.translate))
            results = dict(zip(texts, tt.run(texts, src, lang)))
            back = {}
            if cfg.signals.round_trip and engine.supports(lang, src):
                ok_out = list(dict.fromkeys(res.output for res in results.values()
                                            if res.status == "ok" and res.output))
                rt = TextTranslator(_Tracked(translator, progress, f"{lang}->{src} (round trip)"), engine.limit,
                                    engine.measure, pattern, cfg.segment == "sentence", cfg.keep_code)
                back = {o: r.output for o, r in zip(ok_out, rt.run(ok_out, lang, src)) if r.output is not None}
                segments += rt.segments_sent
            segments += tt.segments_sent
            if not st.is_main:
                continue  # process 0 assembles and writes; the others only translate their shares
            kept, sigs, summary_sigs = _assemble(live, lang, results, back, cfg, pattern, excluded)
            outputs[lang], signals[lang] = kept, sigs
            summaries[lang] = summary_sigs
            per_lang[lang] = {"kept": len(kept), "excluded": sum(e["language"] == lang for e in excluded)}
    seconds = time.perf_counter() - t0
    counts = st.sum({"calls": translator.calls, "hits": translator.hits})
    split = _split_line(translator, st)
    if not st.is_main:
        return {"manifest": None, "run": None, "out_dir": str(out_dir), "primary": False, "split": split}
    manifest = {
        "config_file": plan.config_path, "config_hash": config_hash(cfg), "config": cfg.model_dump(mode="json"),
        "source": {"path": cfg.source.path, "language": src, "layout": layout, "rows": len(rows)},
        "engine": {"kind": engine.kind, "model": engine.model, "fingerprint": _fingerprint(base, engine),
                   "limit": engine.limit},
        "counts": {"rows": len(rows), "per_language": per_lang, "excluded": _reasons(excluded)},
        "signals": summaries,
    }
    run = {"seconds": round(seconds, 3), "engine_calls": counts["calls"], "cache_hits": counts["hits"],
           "segments": segments, "segments_per_second": round(segments / seconds, 2) if seconds else None,
           "engine_calls_per_second": round(counts["calls"] / seconds, 2) if seconds else None,
           "processes": st.world}
    _write(Path(out_dir), rows, src, outputs, signals, excluded, manifest, run)
    return {"manifest": manifest, "run": run, "out_dir": str(out_dir), "primary": True, "split": split}


def _split_line(translator, st) -> str:
    """`2 processes: 120 segments each` (the segments the cache lacked; exact counts when the batches split them
    unevenly); '' for one process."""
    if st.world <= 1:
        return ""
    mine = st.gather(translator.mine)
    line = share_line(translator.segments, "segments", st)
    if max(mine) - min(mine) > 1:
        line += f" (batches are dealt whole: {' + '.join(map(str, mine))})"
    return line


def _assemble(rows: list[SourceRow], lang: str, results: dict, back: dict, cfg, pattern, excluded: list):
    """Translated fields per row, with signals; rows failing a check or a threshold go to `excluded`."""
    candidates, sigs_list, texts = [], [], []
    for r in rows:
        out, pairs, bad = {}, [], None
        for k, text in r.fields.items():
            if k not in r.translate:
                out[k] = text
                continue
            res = results[text]
            if res.output is None:
                bad = (res.status, f"{k}: {res.detail}")
                break
            out[k] = res.output
            if res.status == "ok":
                pairs.append((text, res.output, res))
        if bad:
            excluded.append({"id": r.id, "language": lang, "reason": bad[0], "detail": bad[1]})
            continue
        s = measure_row(pairs, pattern)
        if back and pairs:
            sources = "\n".join(a for a, _, _ in pairs)
            returned = "\n".join(back.get(b, "") for _, b, _ in pairs)
            s.round_trip_chrf = round_trip_chrf([sources], [returned])[0]
        candidates.append((r, out, s))
        sigs_list.append(s)
        texts.append("\n".join(b for _, b, _ in pairs))
    lid_rows = [i for i, t in enumerate(texts) if t]
    LidScorer(cfg.signals.langid_backend, cfg.source.language, lang).apply(
        [sigs_list[i] for i in lid_rows], [texts[i] for i in lid_rows])
    kept, sigs = {}, {}
    for r, out, s in candidates:
        sigs[r.id] = s.to_dict()
        v = verdict(s, cfg.source.language, lang, cfg.signals)
        if v is not None:
            excluded.append({"id": r.id, "language": lang, "reason": v[0], "detail": v[1]})
            continue
        kept[r.id] = out
    return kept, sigs, summarize(sigs_list, lang)


def _reasons(excluded: list[dict]) -> dict:
    out: dict[str, int] = {}
    for e in excluded:
        key = f"{e['language']}:{e['reason']}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _fingerprint(translator, engine) -> str:
    return translator.fingerprint if isinstance(translator, SegmentCache) else engine.fingerprint()


def _nest(fields: dict, roles: list[str]) -> dict:
    if roles:  # chat rows
        return {"messages": [{"role": role, "content": fields[f"messages.{i}"]} for i, role in enumerate(roles)]}
    return dict(fields)


def _write(out: Path, rows, src, outputs, signals, excluded, manifest, run) -> None:
    """Each file under a temporary name, then renamed: a killed run never leaves a half-written output."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "parallel.jsonl": (dumps_row({"id": r.id, src: _nest(r.fields, r.roles),
                                      **{lang: _nest(outputs[lang][r.id], r.roles) for lang in outputs
                                         if r.id in outputs[lang]}}) for r in rows),
        "signals.jsonl": (dumps_row({"id": r.id, "language": lang, **signals[lang][r.id]})
                          for lang in signals for r in rows if r.id in signals[lang]),
        "excluded.jsonl": (dumps_row(e) for e in excluded),
    }
    for name, lines in files.items():
        tmp = out / f"{name}.partial"
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        os.replace(tmp, out / name)
    for name, data in (("manifest.json", manifest), ("run.json", run)):
        (out / f"{name}.partial").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(out / f"{name}.partial", out / name)


def translate(path: str | Path, out_dir: str | Path, overrides: list[str] | None = None,
              data_root: str | None = None) -> dict:
    """Validate, then translate. The one entry point for the CLI and Python users."""
    return run_translate(plan_translate(path, overrides, data_root), out_dir)
