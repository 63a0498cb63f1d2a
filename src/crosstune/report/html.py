"""The experiment report: DIR/report/index.html (one page, inline CSS, PNG plots beside it) and report.md.

Reads only the experiment folder (results.jsonl, results_meta.json and the stage folders they name), so the
report of a finished or half-finished run can be rebuilt at any time: `python -m crosstune.report.html DIR`.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from crosstune.report import plots
from crosstune.eval.intervals import PAIRED_RULE, RULE, fmt_p
from crosstune.report.tables import (Report, category, condition_name, failure_rows, fidelity_rows, heldout_rows,
                                     judge_rows, language_rows, load_report, main_rows, markdown_table, model_label,
                                     read_jsonl, significance, significance_rows)

SMALL_EFFECT = 0.05  # a knowledge gain of a few accuracy points (CrossIn's size): the report warns when blind to it
INTERVALS = (f"Intervals: {RULE} for every rate (accuracy, share of responses in the expected language); a rate "
             "pooled over the languages of the same items uses the effective number of items (clustered by item). "
             f"Differences from the baseline: {PAIRED_RULE}; McNemar's exact test per language, clustered by item "
             "(Durkalski) when languages are pooled (the exact test is conservative: with few discordant pairs the "
             "interval can exclude 0 while p > 0.05). Con3, AC3 and judge scores (not proportions): percentile "
             "bootstrap over items.")


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").lower()


def _pool(row: dict, keep: set) -> dict:
    out: dict = {}
    for d, n in row.items():
        key = str(d) if str(d) in keep else "other"
        out[key] = out.get(key, 0) + n
    return out


def _figures(rep: Report, fig_dir: Path, sig: list[dict]) -> list[dict]:
    figs: list[dict] = []

    def add(path: Path, title: str, caption: str, wide: bool = False) -> None:
        figs.append({"file": path.name, "title": title, "caption": caption, "wide": wide})

    for suite, task in rep.tasks:
        series, panels = [], []
        for arm in rep.arms:
            t = rep.task(arm, suite, task)
            if not t:
                continue
            series.append((arm["arm"], {lang: (acc, *(rep.accuracy_ci(arm, suite, task, lang) or (acc, acc)))
                                        for lang, acc in t["language_acc"].items()}))
            ag = t.get("agreement") or {}
            if ag:
                langs = list(ag)
                panels.append((arm["arm"], langs, langs, np.array([[ag[a][b] for b in langs] for a in langs])))
        if series:
            n = rep.task(next(a for a in rep.arms if rep.task(a, suite, task)), suite, task)["n_items"]
            add(plots.grouped_bars(series, fig_dir / f"acc_{_slug(suite, task)}.png",
                                   f"{task}: accuracy per language ({n} items, 95% Wilson intervals)", "accuracy",
                                   chance=0.25),
                f"{task}: accuracy per language", "Bars: share of items answered correctly in each language; "
                "whiskers: 95% intervals; dashed: chance with 4 options.")
        if panels:
            add(plots.heatmaps(panels, fig_dir / f"agreement_{_slug(suite, task)}.png",
                               f"{task}: answer agreement between languages", "share of items with the same answer"),
                f"{task}: answer agreement", "Each cell: share of items on which the two languages chose the same "
                "option (right or wrong). High agreement with low accuracy means position bias, not knowledge.",
                wide=len(panels) >= 2)
    for suite in dict.fromkeys(s for s, _ in rep.generations):
        labels = [g for s, g in rep.generations if s == suite]
        series, panels = [], []
        for arm in rep.arms:
            bars, rows = {}, {}
            for label in labels:
                g = rep.generation(arm, suite, label)
                if not g:
                    continue
                for lang, v in g["per_language"].items():
                    if v.get("rate") is not None:
                        ci = rep.fidelity_ci(arm, suite, label, lang) or (v["rate"], v["rate"])
                        bars[category(label, lang)] = (v["rate"], *ci)
                for lang, row in (g.get("confusion") or {}).items():
                    rows[category(label, lang)] = row
            if bars:
                series.append((arm["arm"], bars))
            if rows:
                panels.append((arm["arm"], rows))
        panels = _confusion_panels(panels)
        if series:
            add(plots.grouped_bars(series, fig_dir / f"fidelity_{_slug(suite)}.png",
                                   f"{suite}: responses in the expected language", "share of responses"),
                f"{suite}: response-language fidelity", "Share of responses whose detected language is the expected "
                "one: the language a directive asks for (en→zh: English prompt + \"Answer in Chinese.\") or the "
                f"prompt's own; a response that only repeats its prompt does not count; whiskers: {RULE} "
                "intervals.")
        if panels:
            add(plots.heatmaps(panels, fig_dir / f"confusion_{_slug(suite)}.png",
                               f"{suite}: detected response language", "share of the row",
                               xlabel="detected", ylabel="expected", cmap="magma"),
                f"{suite}: response-language confusion", "Rows: the prompt set and the language the response should "
                "be in; columns: the language detected (unknown: no confident detection; echo: the response only "
                "repeats its prompt; other: any language that is neither expected nor English), the same columns for "
                "every arm. The diagonal is fidelity.", wide=True)
    for suite, label in rep.judges:
        series, ref = [], None
        for arm in rep.arms:
            j = rep.judge(arm, suite, label)
            if not j:
                continue
            ref = j.get("reference")
            bars = {lang: (v["score"] / 100, *[c / 100 for c in (v.get("ci95") or (v["score"], v["score"]))])
                    for lang, v in j["per_language"].items() if v.get("score") is not None}
            if j.get("score") is not None:
                bars["all"] = (j["score"] / 100, *[c / 100 for c in (j.get("ci95") or (j["score"], j["score"]))])
            series.append((arm["arm"], bars))
        if series:
            add(plots.grouped_bars(series, fig_dir / f"judge_{_slug(suite, label)}.png",
                                   f"{suite} ({condition_name(label)}): judged against {ref}", "score (win 1, tie .5)",
                                   chance=0.5),
                f"{suite}: LLM judge vs {ref}", "Share of pairs the judge preferred the arm's response to the "
                f"reference arm's ({ref}), ties counting half, each pair judged in both orders; whiskers: 95% "
                "bootstrap intervals; dashed: parity. The table below gives order flips and parse failures.")
    sweep = rep.meta.get("sweep") or {}
    for param, values in sweep.items():
        if len(values) < 2:
            continue
        series: dict[str, list] = {}
        for arm in rep.arms:
            if param not in arm["params"] or not isinstance(arm["params"][param], (int, float)):
                continue
            x = float(arm["params"][param])
            for suite, task in rep.tasks:
                t = rep.task(arm, suite, task)
                if t:
                    ci = rep.accuracy_ci(arm, suite, task) or [None, None]
                    series.setdefault(f"{task} Acc", []).append((x, t["acc"], *ci))
                    if t.get("ac3") is not None:
                        ci3 = (t.get("ci95") or {}).get("AC3_3") or [None, None]
                        series.setdefault(f"{task} AC3", []).append((x, t["ac3"], *ci3))
            for suite, label in rep.generations:
                g = rep.generation(arm, suite, label)
                if g and g.get("overall") is not None:
                    ci = rep.fidelity_ci(arm, suite, label) or [None, None]
                    series.setdefault(f"fidelity {label}", []).append((x, g["overall"], *ci))
        if series:
            short = param.rsplit(".", 1)[-1]
            add(plots.sweep_curves(short, series, fig_dir / f"sweep_{_slug(param)}.png",
                                   f"metrics vs {short}", log_x=max(values) / max(min(v for v in values if v) or 1,
                                                                                  1e-9) > 20),
                f"sweep over {param}", "Each point is one arm; bands: 95% intervals.")
    panels = []
    for arm in rep.arms:
        tr = rep.train(arm)
        if tr and tr.get("log"):
            log = read_jsonl(rep.out_dir / tr["log"])
            if log:
                panels.append((arm["arm"], log))
    if panels:
        add(plots.loss_curves(panels, fig_dir / "train_loss.png"), "training loss by response language",
            "Mean token cross-entropy on response tokens, per logging window, overall and by response language.")
    series = []
    before_done = False
    for arm in rep.arms:
        tr = rep.train(arm)
        if not tr or not tr.get("eval_loss_by_language"):
            continue
        if not before_done and tr.get("initial_eval_loss_by_language"):
            series.append(("before tuning", {k: (v, v, v) for k, v in tr["initial_eval_loss_by_language"].items()}))
            before_done = True
        series.append((arm["arm"], {k: (v, v, v) for k, v in tr["eval_loss_by_language"].items()}))
    if series:
        top = max(v[0] for _, d in series for v in d.values())
        add(plots.grouped_bars(series, fig_dir / "heldout_loss.png", "held-out loss per response language",
                               "mean token cross-entropy", ylim=(0, 1.15 * top)),
            "held-out loss per language", "The same held-out rows for every arm, before tuning and after; lower is "
            "better.")
    if sig:
        rows = [(f"{s['arm']} · {s['task']}", s["delta"], s["ci95"][0], s["ci95"][1], s["p"], fmt_p(s["p"]))
                for s in sig]
        add(plots.forest(rows, fig_dir / "significance.png", f"each arm vs {rep.baseline}",
                         "difference vs the baseline (paired by item)"),
            f"significance vs {rep.baseline}", "Points: difference in accuracy (tasks) or in the share of responses "
            f"in the expected language (fidelity), all languages, paired by item; lines: {PAIRED_RULE} intervals "
            "(effective number of items when languages are pooled); filled: p < 0.05 in McNemar's test (clustered by "
            "item when languages are pooled).", wide=True)  # full size: its p-values read as the tables do
    return figs


def _confusion_panels(panels: list[tuple[str, dict]]) -> list[tuple[str, list, list, np.ndarray]]:
    """Each arm's confusion rows (expected category -> detected counts) as heatmap panels with the same rows and
    columns for every arm: the expected languages first, then en, other (any language neither expected nor English),
    echo and unknown, each column present in one arm present in all."""
    cats = list(dict.fromkeys(c for _, rows in panels for c in rows))
    expected = list(dict.fromkeys(c.split("→")[-1] for c in cats))
    keep = set(expected) | {"en", "unknown", "echo"}
    pooled = [(name, {c: _pool(row, keep) for c, row in rows.items()}) for name, rows in panels]
    detected = sorted({str(d) for _, rows in pooled for row in rows.values() for d in row}, key=lambda d: (
        d not in expected, expected.index(d) if d in expected else 0, ["en", "other", "echo", "unknown"].index(d)
        if d in ("en", "other", "echo", "unknown") else -1, d))
    return [(name, cats, detected, np.array([[rows.get(c, {}).get(d, 0) / max(1, sum(rows.get(c, {}).values()))
                                             for d in detected] for c in cats])) for name, rows in pooled]


def report_notes(out_dir: str | Path) -> list[str]:
    """The warnings at the top of an experiment's report (`small_set_notes`), for a terminal summary."""
    rep = load_report(Path(out_dir))
    return small_set_notes(rep, significance(rep))


def small_set_notes(rep: Report, sig: list[dict]) -> list[str]:
    """A warning per task whose items are too few to show a knowledge (accuracy) change of SMALL_EFFECT: computed from
    the width of the difference's interval against the baseline (else of the accuracy's interval) and its n."""
    notes = []
    for suite, task in rep.tasks:
        rows = [s for s in sig if s["task"] == task]
        arm = next((a for a in rep.arms if rep.task(a, suite, task)), None)
        if arm is None:
            continue
        t = rep.task(arm, suite, task)
        n_items, n_langs = t["n_items"], len(t.get("languages") or [])
        if rows:
            half = max((s["ci95"][1] - s["ci95"][0]) / 2 for s in rows)
            what = f"the 95% interval of an arm's accuracy difference from {rep.baseline} is about ±{half:.2f}"
        else:
            ci = rep.accuracy_ci(arm, suite, task) or [0.0, 1.0]
            half = (ci[1] - ci[0]) / 2
            what = f"the 95% interval of the accuracy is about ±{half:.2f}"
        if half > SMALL_EFFECT:
            need = math.ceil(n_items * (half / SMALL_EFFECT) ** 2)
            notes.append(f"{task} has {n_items} items × {n_langs} languages: {what}, so it cannot show a knowledge "
                         f"change smaller than that; a change of ±{SMALL_EFFECT:.2f} needs about {need} items. Read "
                         f"its accuracy, Con3 and AC3 as a smoke test, not as evidence.")
    return notes


def _tables(rep: Report, sig: list[dict]) -> list[dict]:
    tables = [{"title": "Results", "head": (t := main_rows(rep))[0], "rows": t[1]}]
    for suite, task in rep.tasks:
        h, r = language_rows(rep, suite, task)
        tables.append({"title": f"{task}: accuracy per language", "head": h, "rows": r})
    for suite in dict.fromkeys(s for s, _ in rep.generations):
        h, r = fidelity_rows(rep, suite)
        tables.append({"title": f"{suite}: share of responses in the expected language (en→zh: English prompt "
                                "+ \"Answer in Chinese.\"; zh: a Chinese prompt)", "head": h, "rows": r})
    for suite, label in rep.judges:
        h, r = judge_rows(rep, suite, label)
        ref = next((j["reference"] for a in rep.arms if (j := rep.judge(a, suite, label))), "?")
        tables.append({"title": f"{suite} ({condition_name(label)}): judge score vs {ref} in % (win 1, tie .5; > 50: "
                                "the arm is preferred)", "head": h, "rows": r})
    h, r = heldout_rows(rep)
    if r:
        tables.append({"title": "held-out loss per language (before → after tuning)", "head": h, "rows": r})
    if sig:
        h, r = significance_rows(sig)
        tables.append({"title": f"significance vs {rep.baseline}", "head": h, "rows": r})
    return tables


def write_report(out_dir: str | Path) -> Path:
    """Build DIR/report/{index.html, report.md, *.png} from the experiment folder."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    out_dir = Path(out_dir)
    rep = load_report(out_dir)
    fig_dir = out_dir / "report"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    sig = significance(rep)
    figs = _figures(rep, fig_dir, sig)
    tables = _tables(rep, sig)
    fh, fr = failure_rows(rep)
    notes = small_set_notes(rep, sig)
    ctx = {"meta": rep.meta, "model": model_label(rep.meta.get("model")), "notes": notes, "intervals": INTERVALS,
           "n_arms": len(rep.arms), "figures": figs, "tables": tables,
           "failures": {"head": fh, "rows": fr}, "baseline": rep.baseline,
           "generated": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
           "statuses": {s: sum(a["status"] == s for a in rep.arms) for s in ("ok", "failed", "skipped")}}
    env = Environment(loader=PackageLoader("crosstune.report", "templates"), autoescape=select_autoescape())
    html = env.get_template("report.html.jinja").render(**ctx)
    (fig_dir / "index.html").write_text(html, encoding="utf-8")
    md = [f"# {rep.meta['experiment']}", "", rep.meta.get("description") or "", "",
          f"Model: `{model_label(rep.meta.get('model'))}`; baseline: **{rep.baseline}**; arms: {len(rep.arms)}.", ""]
    md += [f"> **Warning:** {n}" for n in notes] + ([""] if notes else []) + [INTERVALS, ""]
    for t in tables:
        md += [f"## {t['title']}", "", markdown_table(t["head"], t["rows"])]
    if fr:
        md += ["## Failed or skipped stages", "", markdown_table(fh, fr)]
    for f in figs:
        md += [f"## {f['title']}", "", f"![{f['title']}]({f['file']})", "", f["caption"], ""]
    (fig_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (fig_dir / "significance.json").write_text(json.dumps(sig, indent=1) + "\n", encoding="utf-8")
    return fig_dir / "index.html"


if __name__ == "__main__":
    print(write_report(sys.argv[1]))
