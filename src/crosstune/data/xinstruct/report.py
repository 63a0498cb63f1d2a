"""A run's summary for the console: items in and out of every block, drop reasons, model calls and seconds."""

from __future__ import annotations

from rich.table import Table


def summary_table(manifest: dict, run: dict) -> Table:
    t = Table("block", "in", "out", "dropped (reason: n)", "model calls", "cache hits", "s (model)",
              title=f"{manifest['counts']['rows']:,} rows {manifest['counts']['rows_per_language']}; "
                    f"{run['model_calls']:,} model calls, {run['cache_hits']:,} cache hits")
    for step, blocks in manifest["blocks"].items():
        timing = run["blocks"].get(step, {})
        for i, (name, rep) in enumerate(blocks.items()):
            dropped = ", ".join(f"{k.split(':', 1)[1]}: {v}" for k, v in rep.items()
                                if isinstance(k, str) and k.startswith(("dropped:", "off_format:")))
            first = i == 0
            t.add_row(name, str(rep.get("in", "")), str(rep.get("out", "")), dropped or "-",
                      str(timing.get("calls", "")) if first else "", str(timing.get("hits", "")) if first else "",
                      f"{timing.get('seconds', 0):.1f} ({timing.get('model_seconds', 0):.1f})" if first else "")
    return t
