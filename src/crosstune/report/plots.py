"""The report's figures (matplotlib, PNG, same input -> same bytes): accuracy per language with intervals,
answer agreement between languages, response-language confusion, fidelity, sweep curves, loss curves per
language, held-out loss before/after, and each arm's difference from the baseline with its interval."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
          "#64B5CD"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "crosstune"})
    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def grouped_bars(series: list[tuple[str, dict[str, tuple[float, float, float]]]], path: Path, title: str,
                 ylabel: str, chance: float | None = None, ylim: tuple[float, float] = (0, 1)) -> Path:
    """Bars per category (language) grouped by series (arm), with (value, lo, hi) error bars."""
    plt = _plt()
    cats: list[str] = []
    for _, d in series:
        cats += [c for c in d if c not in cats]
    n = max(1, len(series))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cats) * max(1, n / 3) + 2), 3.6))
    x = np.arange(len(cats))
    for i, (name, d) in enumerate(series):
        vals = np.array([d.get(c, (np.nan, np.nan, np.nan))[0] for c in cats], dtype=float)
        lo = np.array([d.get(c, (np.nan, np.nan, np.nan))[1] for c in cats], dtype=float)
        hi = np.array([d.get(c, (np.nan, np.nan, np.nan))[2] for c in cats], dtype=float)
        err = np.nan_to_num(np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)]))
        ax.bar(x - 0.4 + width * (i + 0.5), vals, width * 0.92, yerr=err if err.any() else None, capsize=2,
               color=COLORS[i % len(COLORS)], label=name, error_kw={"elinewidth": 0.8, "alpha": 0.8})
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=0.8, label="chance")
    ax.set_xticks(x, cats)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, n + (chance is not None)), loc="upper center", bbox_to_anchor=(0.5, -0.12),
              frameon=False)
    return _save(fig, path)


def _grid(n: int, max_cols: int = 3):
    cols = min(max_cols, n)
    return cols, math.ceil(n / cols)


def heatmaps(panels: list[tuple[str, list[str], list[str], np.ndarray]], path: Path, title: str, cbar: str,
             fmt: str = "{:.2f}", vmax: float | None = 1.0, cmap: str = "viridis",
             xlabel: str = "", ylabel: str = "") -> Path:
    """One annotated heatmap per panel (name, row labels, column labels, matrix), sharing one colour scale."""
    plt = _plt()
    cols, rows = _grid(len(panels))
    cell = max(len(panels[0][2]) if panels else 1, 3)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * (0.5 * cell + 2.0) + 0.8, rows * (0.45 * cell + 1.3) + 0.5),
                             squeeze=False, layout="constrained")
    vmax = vmax if vmax is not None else max((float(np.nanmax(p[3])) for p in panels if p[3].size), default=1.0)
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.axis("off")
            continue
        name, ylabels, xlabels, m = panels[k]
        im = ax.imshow(m, vmin=0, vmax=vmax, cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=0 if len(xlabels) < 8 else 45)
        ax.set_yticks(range(len(ylabels)), ylabels)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m[i, j]
                if not np.isnan(v):
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                            color="white" if v < 0.6 * vmax else "black")
        for s in ax.spines.values():
            s.set_visible(False)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=cbar)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def sweep_curves(param: str, series: dict[str, list[tuple[float, float, float | None, float | None]]], path: Path,
                 title: str, log_x: bool = False) -> Path:
    """Metric vs the swept value, one line per metric, with intervals where known (as the Pinch paper plots P)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted(pts)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        ax.plot(xs, ys, "o-", color=COLORS[i % len(COLORS)], label=name, lw=1.5)
        if all(p[2] is not None for p in pts):
            ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=COLORS[i % len(COLORS)], alpha=0.15)
    if log_x:
        ax.set_xscale("symlog", linthresh=1)
    ys = [v for pts in series.values() for p in pts for v in p[1:] if v is not None]
    if ys and min(ys) >= 0 and max(ys) <= 1:  # rates and accuracies: the whole 0..1 scale
        ax.set_ylim(0, 1)
    ax.set_xlabel(param)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    return _save(fig, path)


def loss_curves(panels: list[tuple[str, list[dict]]], path: Path) -> Path:
    """Training loss by response language, one panel per arm (records of the trainer's log.jsonl)."""
    plt = _plt()
    cols, rows = _grid(len(panels))
    size = (6.4, 3.6) if len(panels) == 1 else (3.6, 2.7)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size[0], rows * size[1]), squeeze=False, sharey=True)
    langs = sorted({k for _, log in panels for r in log for k in r.get("loss_by_language", {})})
    color = {lang: COLORS[i % len(COLORS)] for i, lang in enumerate(langs)}
    top = [v for _, log in panels for r in log for v in [r["loss"], *r.get("loss_by_language", {}).values()]]
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.axis("off")
            continue
        name, log = panels[k]
        steps = [r["step"] for r in log]
        ax.plot(steps, [r["loss"] for r in log], color="black", lw=1.8, label="all")
        for lang in langs:
            pts = [(r["step"], r["loss_by_language"][lang]) for r in log if lang in r.get("loss_by_language", {})]
            if pts:
                ax.plot(*zip(*pts), lw=1, color=color[lang], label=lang)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("train loss (response tokens)")
    if top:
        axes.flat[0].set_ylim(0, 1.1 * float(np.percentile(top, 98)))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in list(axes.flat)[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=min(8, len(seen)), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("training loss by response language", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def forest(rows: list[tuple[str, float, float, float, float, str]], path: Path, title: str, xlabel: str) -> Path:
    """Each (label, delta, lo, hi, p, p as text) as a point with its interval and its p-value written beside it in
    the tick labels' size; significant ones (p < 0.05) filled."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(rows) + 1.3))
    y = np.arange(len(rows))[::-1]
    for yi, (label, d, lo, hi, p, p_text) in zip(y, rows):
        c = COLORS[3] if p < 0.05 and d < 0 else COLORS[2] if p < 0.05 else "grey"
        ax.plot([lo, hi], [yi, yi], color=c, lw=2)
        ax.plot([d], [yi], "o", color=c, mfc=c if p < 0.05 else "white", ms=6)
        ax.text(max(hi, d) + 0.005, yi, f" p {p_text}" if p_text.startswith("<") else f" p = {p_text}",
                va="center", fontsize=11, color="#333333")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    lo_all = min([r[2] for r in rows] + [0])
    hi_all = max([r[3] for r in rows] + [0])
    pad = 0.15 * (hi_all - lo_all or 0.1)
    ax.set_xlim(lo_all - pad, hi_all + 4 * pad)
    return _save(fig, path)
