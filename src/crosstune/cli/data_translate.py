"""`crosstune data translate CONFIG.yaml --out DIR [key=value ...]`."""

from __future__ import annotations

from typing import Optional

import typer

from crosstune.console import console, out
from crosstune.paths import OPTION_HELP


def translate(
    path: str = typer.Argument(..., help="Translate config YAML, e.g. configs/translate/alpaca_pt_offline.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like limit=500 engine.batch_size=32."),
    out_dir: str = typer.Option(..., "--out", help="Output folder for parallel.jsonl, manifest.json, excluded.jsonl."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help=OPTION_HELP),
) -> None:
    """Translate fields of an instruction set into other languages: a parallel corpus keyed by source id."""
    from crosstune.data.translate import plan_translate, run_translate
    from crosstune.distributed import state

    plan = plan_translate(path, overrides or [], data_root)  # config, paths and language pairs fail here
    c = plan.config
    primary = state().is_main
    if primary:
        console.print(f"translating {c.source.path} ({c.source.language}) -> {', '.join(c.languages)} with "
                      f"{plan.engine.kind} {plan.engine.model}")
    result = run_translate(plan, out_dir)
    if not result["primary"]:
        return  # another process of a multi-process launch: process 0 reports
    m, r = result["manifest"], result["run"]
    for lang, n in m["counts"]["per_language"].items():
        s = m["signals"][lang]
        console.print(f"  {lang}: kept {n['kept']:,}, excluded {n['excluded']:,}; LID agreement {s['lid_agreement']}, "
                      f"length ratio median {s['length_ratio'].get('median')}, spans kept {s['spans_ok_rate']}")
    for reason, n in m["counts"]["excluded"].items():
        console.print(f"  excluded {reason}: {n:,}")
    if result["split"]:
        console.print(f"  {result['split']}")
    console.print(f"  {r['segments']:,} segments in {r['seconds']:.1f}s ({r['segments_per_second']} seg/s); "
                  f"engine calls {r['engine_calls']:,}, cache hits {r['cache_hits']:,}")
    out.print(f"{out_dir}/parallel.jsonl")
