"""`crosstune data align --reference REF --target TGT --target-language vi --out OUT.jsonl`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from crosstune.console import console, out
from crosstune.paths import OPTION_HELP


def align(
    reference: str = typer.Option(..., "--reference", help="The complete reference set, e.g. the English Alpaca."),
    target: str = typer.Option(..., "--target", help="The translation that lost rows and ids."),
    target_language: str = typer.Option(..., "--target-language", help="Language of the target, e.g. vi."),
    out_path: str = typer.Option(..., "--out", help="Aligned target examples (crosstune rows, reference ids)."),
    reference_prefix: str = typer.Option("", "--reference-prefix", help="Column prefix, e.g. en_ for en_instruction."),
    reference_format: str = typer.Option("alpaca", "--reference-format"),
    reference_language: str = typer.Option("en", "--reference-language"),
    target_format: str = typer.Option("prompt_response", "--target-format"),
    min_confidence: float | None = typer.Option(None, "--min-confidence",
                                                   help="Keep pairs with at least this posterior (default 0.99)."),
    pairs_path: str | None = typer.Option(None, "--pairs", help="TSV with every target row and its status "
                                             "(default: OUT with .pairs.tsv)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute even if a cached alignment exists."),
    show: int = typer.Option(0, "--show", help="Print this many kept pairs side by side (spread over the file) "
                             "to check by hand."),
    show_low: bool = typer.Option(False, "--show-low", help="Sample the low-confidence pairs instead."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --show sample."),
    data_root: str | None = typer.Option(None, "--data-root", help=OPTION_HELP),
) -> None:
    """Align a translation to its reference by a monotone DP on translation-robust signals; keep confident pairs."""
    from crosstune.data.align import DEFAULT_MIN_CONFIDENCE, align_files, reidentify
    from crosstune.data.align.report import confidence_histogram, write_pairs_tsv
    from crosstune.data.io import write_examples
    from crosstune.errors import CrosstuneError
    from crosstune.paths import Lookup

    threshold = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    if not 0.0 <= threshold <= 1.0:
        raise CrosstuneError(f"--min-confidence {threshold}: expected a probability in [0, 1]")
    reference = Lookup(root=data_root).spelled(reference, what="--reference")
    target = Lookup(root=data_root).spelled(target, what="--target")
    start, cpu_start = time.perf_counter(), time.process_time()
    alignment, rows = align_files(reference, target, target_language=target_language,
                                  reference_format=reference_format, reference_prefix=reference_prefix,
                                  reference_language=reference_language, target_format=target_format,
                                  min_confidence=threshold, use_cache=not no_cache)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    kept = reidentify(alignment, rows)
    write_examples(out_path, kept, "crosstune")
    pairs_file = pairs_path or str(Path(out_path).with_suffix("")) + ".pairs.tsv"
    write_pairs_tsv(pairs_file, alignment)

    s = alignment.stats
    console.print(f"aligned {target}\n     to {reference} in {elapsed:.1f}s ({cpu:.1f}s CPU)")
    table = Table("", "rows")
    for label, key in (("target rows", "target_rows"), ("reference rows", "reference_rows"),
                       ("aligned", "aligned"), (f"kept (confidence >= {threshold:g})", "kept"),
                       ("dropped: low confidence", "low_confidence"), ("dropped: unmatched", "unmatched_target"),
                       ("reference rows skipped", "skipped_reference")):
        table.add_row(label, f"{s[key]:,}")
    console.print(table)
    hist = Table("confidence", "pairs", title="confidence of aligned pairs")
    for label, n in confidence_histogram(alignment):
        hist.add_row(label, f"{n:,}")
    console.print(hist)
    console.print(f"every target row with its status: {pairs_file}")
    if show:
        _show_pairs(alignment, rows, reference, reference_format, reference_prefix, show, show_low, seed)
    out.print(f"aligned {s['aligned']} kept {s['kept']} of {s['target_rows']} -> {out_path}", highlight=False)


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def _show_pairs(alignment, rows, reference, reference_format, reference_prefix, n, low, seed) -> None:
    from crosstune.data.align.report import spread_sample
    from crosstune.data.io import read_examples

    pool = [p for p in alignment.pairs if (p.confidence < alignment.min_confidence) == low]
    refs = list(read_examples(reference, reference_format, prefix=reference_prefix))
    for p in spread_sample(pool, n, seed, alignment.n_target):
        ref, tgt = refs[p.ref_index], rows[p.target_index]
        out.print(f"--- target {p.target_index} -> reference {p.ref_id} (confidence {p.confidence:.4f})",
                  highlight=False)
        out.print(f"  ref  prompt: {_clip(ref.instruction.content)}", highlight=False, markup=False)
        out.print(f"  tgt  prompt: {_clip(tgt.instruction.content)}", highlight=False, markup=False)
        out.print(f"  ref  output: {_clip(ref.response.content, 120)}", highlight=False, markup=False)
        out.print(f"  tgt  output: {_clip(tgt.response.content, 120)}", highlight=False, markup=False)
