"""The report of an evaluation folder, read from the summaries the engine wrote: for `eval run`, `eval consistency`
and an experiment's consistency stage each run folder's table.md and figures and OUT/results.md with every task's
table; for `eval judge` (and an experiment's judge stage) OUT/results.md."""

from __future__ import annotations

import json
from pathlib import Path

from crosstune.console import console
from crosstune.eval.evaluate import summary_paths
from crosstune.report.consistency import task_table, write_task_report
from crosstune.report.fidelity import judge_table


def write_eval_report(out_dir: str | Path, title: str, by_mode: bool = False) -> Path:
    """Tables and figures for every OUT/<task>[/<mode>]/summary.json; returns OUT/results.md."""
    out_dir = Path(out_dir)
    tables = []
    for path in summary_paths(out_dir, by_mode):
        summary = json.loads(path.read_text(encoding="utf-8"))
        write_task_report(path.parent, summary)
        tables.append(task_table(summary))
    results = out_dir / "results.md"
    results.write_text(f"# {title}\n\n" + "\n".join(tables), encoding="utf-8")
    console.print(f"wrote {out_dir}/summary.json, results.md and per-task folders")
    return results


def write_judge_report(out_dir: str | Path, summary: dict) -> Path:
    """OUT/results.md of a judge run: scores, position bias, parse failures and the gate per language."""
    results = Path(out_dir) / "results.md"
    results.write_text(judge_table(summary), encoding="utf-8")
    console.print(f"wrote {results}")
    return results
