"""`crosstune data inspect PATH`: rows, detected language of each text field, length stats."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from crosstune.console import out
from crosstune.paths import OPTION_HELP


def inspect(path: str = typer.Argument(..., help="a JSON/JSONL(.gz)/Parquet file or a HF dataset folder"),
            sample: int = typer.Option(2000, help="rows sampled (seeded) for language detection"),
            backend: str = typer.Option("pycld2", help="language-ID backend: pycld2 or lingua"),
            seed: int = typer.Option(0),
            data_root: str = typer.Option(None, "--data-root", help=OPTION_HELP)) -> None:
    """Profile an instruction file: row count, detected language per text field, length stats (chars)."""
    from crosstune.data.inspect import profile
    from crosstune.paths import Lookup

    path = Lookup(root=data_root).spelled(path, what="PATH")
    n, fields = profile(path, sample=sample, seed=seed, backend=backend)
    out.print(f"[bold]{path}[/bold]")
    out.print(f"rows: {n}")
    table = Table("field", "language", "share", "other detections", "empty", "mean", "median", "p95", "max",
                  title=f"text fields (languages detected on {min(sample, n)} sampled rows; lengths in chars)")
    for f in fields:
        lang, share = f.top_language()
        others = ", ".join(f"{k} {v}" for k, v in f.detected.most_common(4) if k != lang)
        if f.declared:
            others = (others + "; " if others else "") + "declared " + ", ".join(
                f"{k} {v}" for k, v in f.declared.most_common(4))
        s = f.length_stats()
        table.add_row(escape(f.name), lang, f"{share:.1%}", others, str(f.empty), str(s["mean"]), str(s["median"]),
                      str(s["p95"]), str(s["max"]))
    out.print(table)
    for f in fields:  # one plain line per field for scripts
        lang, share = f.top_language()
        out.print(f"field {escape(f.name)}: {lang} ({share:.1%} of {sum(f.detected.values())} sampled texts)", highlight=False)
