"""Markdown tables and the confusion-matrix figure for response-language fidelity and judge summaries, and the
files they go to beside a fidelity run's or an LCB task's results (the evaluation writes results; this reads them).
"""

from __future__ import annotations

import json
from pathlib import Path

from crosstune.eval.intervals import RULE, fmt_ci

MAX_EXTRA_COLUMNS = 6  # detected languages beyond the expected ones get a column each, the rest go to "other"


def _f(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fidelity_table(summary: dict, title: str = "") -> str:
    """Per expected language: n, expected_rate [95% CI], LPR, WPR, LCPR, most frequent wrong label; then misses.
    The reference protocol's summary: its LCB table and the counts per language."""
    if summary.get("protocol") == "reference":
        return reference_table(summary, title)
    lines = [f"### {title or 'Response-language fidelity'} (LID {summary['lid']}, {summary['n_responses']} responses)",
             "", "| language | n | expected rate [95% CI] | LPR | WPR | LCPR | top miss |",
             "|---|---|---|---|---|---|---|"]
    rows = list(summary["per_language"].items()) + [("**all (pooled)**", summary["overall"])]
    for lang, s in rows:
        ci = s.get("expected_rate_95")
        rate = _f(s["expected_rate"]) + fmt_ci(ci)
        wrong = {k: v for k, v in summary["confusion"].get(lang, {}).items() if k != lang}
        top = max(wrong.items(), key=lambda kv: kv[1]) if wrong else None
        lines.append(f"| {lang} | {s['n']} | {rate} | {_f(s['lpr'])} | {_f(s['wpr'])} | {_f(s['lcpr'])} | "
                     f"{f'{top[0]} ({top[1]})' if top else ''} |")
    mean = summary.get("mean_over_languages")
    if mean:
        lines.append(f"| **mean of {mean['languages']} languages** | | {_f(mean['expected_rate'])} | "
                     f"{_f(mean['lpr'])} | {_f(mean['wpr'])} | {_f(mean['lcpr'])} | |")
    lines += ["", "Expected rate: share of responses detected in the expected language that do not only repeat their "
              f"prompt (echo), with its {RULE} interval (the pooled row clustered by prompt id). "
              "WPR: share of line-clean responses without English words (— : not defined for the language). "
              "`all (pooled)` counts every response once; the mean of languages weighs each language equally "
              "(LCB's `all`).", ""]
    if any(r["task"] != "generation" for r in summary.get("lcb", [])):
        lines += [lcb_table(summary["lcb"], "crosstune protocol in LCB's layout"), ""]
    misses = [m for ms in summary.get("misses", {}).values() for m in ms[:2]]
    if misses:
        lines += ["| id | expected | detected | why | response |", "|---|---|---|---|---|"]
        for m in misses:
            why = (m["reason"] or "-") + (f" ({', '.join(m['english_words'])})" if m.get("english_words") else "")
            text = m["snippet"].replace("|", "\\|")[:100]
            lines.append(f"| {str(m['id'])[:12]} | {m['expected']} | {m['detected']} | {why} | {text} |")
    return "\n".join(lines) + "\n"


def _pct(value) -> str:
    return "N/A" if value is None else f"{value:.2%}"


def lcb_table(rows: list[dict], title: str = "") -> str:
    """LCB's table per task: a row per source (then `all`), a column per language (then `all`); LPR / WPR in %."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        sources = sorted({r["source"] for r in mine} - {"all"}) + ["all"]
        langs = sorted({r["language"] for r in mine} - {"all"}) + ["all"]
        cell = {(r["source"], r["language"]): r for r in mine}
        model = next((r["model"] for r in mine if r.get("model")), None)
        out += [f"#### {title + ': ' if title else ''}{task}{f' ({model})' if model else ''}: LPR / WPR", "",
                "| source | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
        for src in sources:
            cells = [f"{_pct(cell[(src, lang)]['lpr'])} / {_pct(cell[(src, lang)]['wpr'])}"
                     if (src, lang) in cell else "" for lang in langs]
            out.append(f"| {src} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def reference_table(summary: dict, title: str = "") -> str:
    """The reference protocol's results: LCB's table, then what was judged per language."""
    lines = [f"### {title or 'Language Confusion Benchmark, reference protocol'} (LID {summary['lid']}, "
             f"{summary['n_responses']} responses)", "", lcb_table(summary["lcb"]),
             "`all` rows/columns are LCB's averages: per source and per language over the cells, `(all, all)` over "
             "the per-language means. WPR only for ar, hi, ja, ko, ru, zh (N/A elsewhere).", "",
             "| language | responses | skipped (no line of >= 5 tokens) | with line errors | with word errors |",
             "|---|---|---|---|---|"]
    for lang, c in summary["per_language"].items():
        lines.append(f"| {lang} | {c['n']} | {c['skipped']} | {c['line_errors']} | {c['word_errors']} |")
    return "\n".join(lines) + "\n"


def side_by_side(reference: list[dict], crosstune: list[dict]) -> str:
    """The same completions under both protocols, per (task, source, language): LPR and WPR, reference vs crosstune."""
    ct = {(r["task"], r["source"], r["language"]): r for r in crosstune}
    lines = ["| task | source | language | LPR reference | LPR crosstune | WPR reference | WPR crosstune |",
             "|---|---|---|---|---|---|---|"]
    for r in reference:
        c = ct.get((r["task"], r["source"], r["language"]), {})
        lines.append(f"| {r['task']} | {r['source']} | {r['language']} | {_pct(r['lpr'])} | {_pct(c.get('lpr'))} | "
                     f"{_pct(r['wpr'])} | {_pct(c.get('wpr'))} |")
    return "\n".join(lines) + "\n"


def fidelity_lines(summary: dict) -> list[str]:
    """The console summary: per language (crosstune protocol) or the LCB `all` rows (reference protocol)."""
    if summary.get("protocol") == "reference":
        return [f"{r['task']:>14} {r['source']:>16} {r['language']:>4}  LPR {_pct(r['lpr']):>7}  WPR {_pct(r['wpr'])}"
                for r in summary["lcb"] if "all" in (r["source"], r["language"])]
    lines = []
    for lang, r in summary["per_language"].items():
        lines.append(f"{lang:>8}  n {r['n']:4d}  expected {r['expected_rate']:.3f}  LPR {r['lpr']:.3f}  "
                     f"WPR {_f(r['wpr'])}  LCPR {r['lcpr']:.3f}")
    o, m = summary["overall"], summary["mean_over_languages"]
    lines.append(f"{'pooled':>8}  n {o['n']:4d}  expected {o['expected_rate']:.3f}  LPR {o['lpr']:.3f}  "
                 f"WPR {_f(o['wpr'])}  LCPR {_f(o['lcpr'])}")
    lines.append(f"{'mean':>8}  {m['languages']:2d} languages  expected {_f(m['expected_rate'])}  LPR {_f(m['lpr'])}  "
                 f"WPR {_f(m['wpr'])}  LCPR {_f(m['lcpr'])}")
    return lines


def confusion_columns(confusion: dict[str, dict[str, int]]) -> list[str]:
    """Expected languages first (same order as the rows), then the most frequent other labels, other, echo (responses
    that only repeat their prompt, when there are any), unknown."""
    rows = list(confusion)
    totals: dict[str, int] = {}
    for counts in confusion.values():
        for label, k in counts.items():
            if label not in rows and label not in ("unknown", "echo"):
                totals[label] = totals.get(label, 0) + k
    extra = sorted(totals, key=lambda x: (-totals[x], x))
    cols = rows + extra[:MAX_EXTRA_COLUMNS]
    if len(extra) > MAX_EXTRA_COLUMNS:
        cols.append("other")
    return cols + (["echo"] if any("echo" in c for c in confusion.values()) else []) + ["unknown"]


def confusion_matrix(confusion: dict[str, dict[str, int]]) -> tuple[list[str], list[str], list[list[int]]]:
    rows, cols = list(confusion), confusion_columns(confusion)
    matrix = []
    for r in rows:
        counts = confusion[r]
        line = [counts.get(c, 0) for c in cols]
        if "other" in cols:
            line[cols.index("other")] = sum(k for label, k in counts.items() if label not in cols)
        matrix.append(line)
    return rows, cols, matrix


def plot_confusion(summary: dict, path: str | Path, title: str = "") -> None:
    """Expected (rows) x detected (columns): count and row share in each cell, colour = row share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols, counts = confusion_matrix(summary["confusion"])
    m = np.array(counts, dtype=float)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.72 * len(cols), 1.3 + 0.55 * len(rows)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if m[i, j]:
                color = "white" if share[i, j] > 0.55 else "black"
                ax.text(j, i, f"{int(m[i, j])}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=7.5,
                        color=color, linespacing=1.1)
    ax.set_xticks(range(len(cols)), cols, rotation=0, fontsize=9)
    ax.set_yticks(range(len(rows)), [f"{r} (n={int(m[i].sum())})" for i, r in enumerate(rows)], fontsize=9)
    ax.set_xlabel("detected language")
    ax.set_ylabel("expected language")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    for j, c in enumerate(cols):  # mark the diagonal: where an expected language meets itself
        if c in rows:
            i = rows.index(c)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#d62728", linewidth=1.2))
    extra = sum(c not in rows for c in cols)
    if extra:  # detected languages that were never expected sit right of this line
        ax.axvline(len(cols) - extra - 0.5, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_title(title or "Response language: expected x detected", fontsize=10, pad=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def judge_table(summary: dict) -> str:
    """Per language: gated and ungated score [95% CI], W/T/L, mean 0-10 scores, flip rate, parse failures."""
    xins = summary["protocol"] == "xinstruct"
    lines = [f"### Judge {summary['judge']}: {summary['protocol']}, A = {summary['a']} vs B = "
             f"{', '.join(summary['b'])} ({summary['n_pairs']} pairs, language gate "
             f"{'on' if summary['gate'] else 'off'} for the headline)", "",
             "| language | pairs | score (ungated) [95% CI] | W/T/L | score (gated) [95% CI] | W/T/L | "
             + ("mean A / B (0-10) | " if xins else "") + "flip rate | first-position share | parse failures |",
             "|---|---|---|---|---|---|" + ("---|" if xins else "") + "---|---|---|"]

    def score(s):
        ci = s.get("score_95")
        return _f(s["score"], 1) + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")

    rows = list(summary["per_language"].items()) + [("**all**", summary["overall"])]
    for lang, s in rows:
        u, g, pb = s["ungated"], s["gated"], s["position_bias"]
        means = f"{_f(u.get('mean_a'), 2)} / {_f(u.get('mean_b'), 2)} | " if xins else ""
        lines.append(f"| {lang} | {s.get('pairs', u['n'])} | {score(u)} | {u['win']}/{u['tie']}/{u['loss']} | {score(g)} | "
                     f"{g['win']}/{g['tie']}/{g['loss']} | {means}{_f(pb['flip_rate'], 2)} | "
                     f"{_f(pb['first_share'], 2)} | {s['parse_failures']} |")
    pf, pb = summary["parse_failures"], summary["position_bias"]
    lines += ["", "Scores are A vs B in % (win 1, tie .5, loss 0); W/T/L count the pairs each score covers "
              "(ungated: pairs with both verdicts parsed; gated: those plus pairs the gate decides).",
              f"Parse failures: {pf['failed']} of {pf['verdicts']} verdicts (ab {pf['per_order']['ab']}, "
              f"ba {pf['per_order']['ba']}); {pf['pairs_excluded']} pairs without both verdicts leave the ungated "
              "score.", f"Position bias: the judge preferred the first-shown answer in {pb['first']} and the second "
              f"in {pb['second']} of its decided verdicts (favours {pb['favours']}, two-sided binomial p = "
              f"{pb.get('p_value')}); the verdict flipped with the "
              f"order in {pb['flips']} of {pb['pairs_both_parsed']} pairs.",
              f"Judge calls: {summary['calls']} sent, {summary['cache_hits']} from the cache."]
    if pf["reasons"]:
        lines.append("Failure reasons: " + "; ".join(f"{k} ({v})" for k, v in pf["reasons"].items()))
    return "\n".join(lines) + "\n"


def write_fidelity_report(out_dir: str | Path, summary: dict) -> list[str]:
    """results.md beside a fidelity run's summary.json, and confusion.png for the crosstune protocol; returns the
    names written."""
    out = Path(out_dir)
    names = ["results.md"]
    if summary.get("protocol") == "crosstune":
        source = Path(str(summary.get("source", ""))).name
        plot_confusion(summary, out / "confusion.png", title=f"Response language ({source}, {summary.get('lid')})")
        names.append("confusion.png")
    (out / "results.md").write_text(fidelity_table(summary), encoding="utf-8")
    return names


def write_lcb_report(task_dir: str | Path) -> Path:
    """An LCB task's table.md (LCB's table by each protocol, then the two side by side per cell) from its
    lcb_summary.json, and each protocol's fidelity report in reference/ and crosstune/."""
    task_dir = Path(task_dir)
    s = json.loads((task_dir / "lcb_summary.json").read_text(encoding="utf-8"))
    for protocol in ("reference", "crosstune"):
        summary = json.loads((task_dir / protocol / "summary.json").read_text(encoding="utf-8"))
        write_fidelity_report(task_dir / protocol, summary)
    d = s["decoding"]
    how = "greedy" if not d["temperature"] else f"T {d['temperature']}, top-p {d['top_p']}, seed {d['seed']}"
    path = task_dir / "table.md"
    path.write_text(
        f"# {s['task']}: {s['model']}\n\n{s['n_prompts']} prompts, at most {d['max_new_tokens']} new tokens, {how}; "
        f"generation {s['generation_seconds']:.1f} s ({s['calls']} calls, {s['cache_hits']} from the cache).\n\n"
        + lcb_table(s["lcb_reference"], "LCB reference protocol") + "\n"
        + lcb_table(s["lcb_crosstune"], "crosstune protocol") + "\n### Both protocols on the same completions\n\n"
        + side_by_side(s["lcb_reference"], s["lcb_crosstune"]), encoding="utf-8")
    return path


def write_lcb_reports(out_dir: str | Path) -> list[Path]:
    """`write_lcb_report` for every LCB task folder in OUT (each holding an lcb_summary.json)."""
    return [write_lcb_report(f.parent) for f in sorted(Path(out_dir).glob("*/lcb_summary.json"))]
