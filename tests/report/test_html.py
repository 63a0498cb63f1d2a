import hashlib
import re

import pytest

from tests.experiments.conftest import write_experiment


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir):
    """A tiny two-point sweep run once (tiny model, embedded demo data), shared by the report tests."""
    import os

    tmp = tmp_path_factory.mktemp("report")
    old = {k: os.environ.get(k) for k in ("CROSSTUNE_CACHE", "CROSSTUNE_DATA")}
    os.environ["CROSSTUNE_CACHE"] = str(tmp / "cache")
    os.environ.pop("CROSSTUNE_DATA", None)
    try:
        from crosstune.experiments.runner import run_experiment

        judge = {"kind": "judge", "generations": "fid", "judge": str(tiny_model_dir), "lid": "pycld2",
                 "n_boot": 50, "max_new_tokens": 4}
        exp = write_experiment(tmp, tiny_model_dir, **{"sweep/train.lora.lora.r": [2, 8], "eval/side": judge})
        summary = run_experiment(exp, tmp / "out")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return tmp / "out", summary


def test_page_references_every_plot_and_the_plots_exist(finished_run):
    out, summary = finished_run
    assert not summary["failed"]
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    names = {s.split(".")[0] for s in srcs}
    for expected in ("acc_mc_demo_mc", "agreement_mc_demo_mc", "fidelity_fid",
                     "confusion_fid", "sweep_train_lora_lora_r", "train_loss", "heldout_loss",
                     "significance"):
        assert expected in names, f"{expected} missing from {sorted(names)}"
    for s in srcs:
        png = (out / "report" / s).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000  # a drawn figure, not an empty canvas
    assert "<table>" in html and "untuned (baseline)" in html and "crossin+lora[r=8]" in html
    # the judge suite: one table row per judged arm; the tiny random judge never answers in format, which the
    # table reports as parse failures (2 orders x 1 pair) instead of a score
    assert "side (en→zh): judge score vs untuned" in html
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "| crossin+lora[r=2] | – | – | 1 | – | 2 |" in md
    assert "| arm |" in md and "![training loss by response language](train_loss.png)" in md


def test_the_report_is_rebuilt_from_the_folder_with_the_same_bytes(finished_run):
    from crosstune.report.html import write_report

    out, _ = finished_run
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "report").glob("*.png")}
    write_report(out)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "report").glob("*.png")}
    assert before == after


def test_significance_is_paired_by_item(finished_run):
    import json

    out, _ = finished_run
    sig = json.loads((out / "report" / "significance.json").read_text())
    assert {s["arm"] for s in sig} == {"crossin+lora[r=2]", "crossin+lora[r=8]"}
    fid = [s for s in sig if s["task"] == "fidelity en→zh"]  # the generation condition, paired by prompt
    assert len(fid) == 2 and all(s["n"] == 1 and set(s["per_language"]) == {"zh"} for s in fid)
    sig = [s for s in sig if s["task"] == "demo_mc"]
    assert len(sig) == 2
    for s in sig:  # crosstune.eval.compare: 3 items x 3 languages, McNemar clustered by item, Newcombe's interval
        assert s["baseline"] == "untuned" and s["n"] == 9 and s["n_items"] == 3 and 0 < s["p"] <= 1
        assert s["ci95"][0] <= s["delta"] <= s["ci95"][1] and s["ci95"][0] < s["ci95"][1]  # never zero width
        assert "clustered" in s["test"] and "Newcombe" in s["interval"]
        assert set(s["per_language"]) == {"en", "zh", "es"}
        assert all(v["n"] == 3 and 0 < v["p"] <= 1 and v["test"] == "McNemar exact"
                   for v in s["per_language"].values())


def test_every_interval_in_the_report_is_the_rule_computed_from_the_saved_outcomes(finished_run):
    """The Results table's fidelity and accuracy intervals are Wilson intervals of the saved per-item outcomes, equal to
    scipy's for a single language; the page names the rule."""
    import json

    from scipy.stats import binomtest

    from crosstune.eval.intervals import fmt_ci, proportion_ci
    from crosstune.report.tables import load_report, main_rows

    out, _ = finished_run
    rep = load_report(out)
    head, rows = main_rows(rep)
    for arm, row in zip(rep.arms, rows):
        suite, label = rep.generations[0]
        g = rep.generation(arm, suite, label)
        items = [json.loads(x) for x in (out / g["fidelity_dir"] / "items.jsonl").read_text().splitlines()]
        k, n = sum(r["match"] for r in items), len(items)
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert row[head.index(f"fidelity {'en→zh'}")] == f"{k / n:.3f}" + fmt_ci([ci.low, ci.high])
        pred = rep.predictions(arm, *rep.tasks[0])
        acc = proportion_ci(list(pred.values()), [i for i, _ in pred])
        assert row[head.index("demo_mc Acc")].endswith(fmt_ci(acc))
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "95% Wilson score for every rate" in html and "Newcombe" in html


def test_the_report_agrees_with_the_terminal_and_names_the_model(finished_run):
    from crosstune.report.tables import heldout_rows, load_report, main_rows

    out, summary = finished_run
    rep = load_report(out)
    head, rows = main_rows(rep)
    trained = next(r for r in summary["stages"].values() if (r.get("result") or {}).get("initial_eval_loss"))
    base = next(r for r in rows if r[0] == "untuned (baseline)")
    assert base[head.index("held-out loss")] == f"{trained['result']['initial_eval_loss']:.3f}"  # not "–"
    assert heldout_rows(rep)[1][0][0] == "untuned"
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert f"Model: `{rep.meta['model'].rstrip('/').rsplit('/', 1)[-1]} (" in md  # its name, then the full spec


def test_a_demo_sized_task_is_flagged_as_too_small_from_its_n(finished_run):
    import math
    import re

    from crosstune.report.html import SMALL_EFFECT, small_set_notes
    from crosstune.report.tables import load_report, significance

    out, _ = finished_run
    rep = load_report(out)
    sig = significance(rep)
    notes = small_set_notes(rep, sig)
    half = max((s["ci95"][1] - s["ci95"][0]) / 2 for s in sig if s["task"] == "demo_mc")
    assert len(notes) == 1 and f"±{half:.2f}" in notes[0] and "3 items × 3 languages" in notes[0]
    assert int(re.search(r"needs about (\d+) items", notes[0]).group(1)) == math.ceil(3 * (half / SMALL_EFFECT) ** 2)
    assert notes[0] in (out / "report" / "report.md").read_text(encoding="utf-8")


def test_confusion_panels_have_the_same_columns_for_every_arm():
    from crosstune.report.html import _confusion_panels

    untuned = {"en→zh": {"en": 7, "zh": 3, "unknown": 3}, "es": {"es": 12, "echo": 1}}
    tuned = {"en→zh": {"zh": 12, "en": 1}, "es": {"es": 11, "pt": 1, "gl": 1}}
    panels = _confusion_panels([("untuned", untuned), ("tuned", tuned)])
    assert panels[0][1:3] == panels[1][1:3]
    assert panels[0][2] == ["zh", "es", "en", "other", "echo", "unknown"]
    assert panels[1][3][:, panels[1][2].index("unknown")].tolist() == [0, 0]  # the column exists, empty
    assert panels[1][3][1, panels[1][2].index("other")] == pytest.approx(2 / 13)


def test_p_values_and_model_names_in_the_tables():
    from crosstune.report.tables import model_label, significance_rows

    assert model_label("default") == "SmolLM2-135M-Instruct (default)"
    assert model_label("/m/my-model") == "my-model (/m/my-model)" and model_label("org/name") == "name (org/name)"
    sig = [{"task": "t", "arm": "a", "delta": 0.0, "ci95": [-0.2281, 0.2281], "p": 1.0, "n": 13, "n_items": 13,
            "no_pair_differs": True, "test": "McNemar exact",
            "per_language": {"zh": {"delta": 0.692, "p": 0.0039}, "es": {"delta": 0.9, "p": 0.0001}}}]
    head, rows = significance_rows(sig)
    assert rows[0][2:5] == ["+0.000 (no pair differs)", "[-0.23, +0.23]", "1.0"]
    assert rows[0][-2:] == ["+0.692 (0.0039 *)", "+0.900 (< 0.001 *)"]
