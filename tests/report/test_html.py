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
    for s in sig:  # crosstune.eval.compare: 3 items x 3 languages, McNemar p, paired bootstrap
        assert s["baseline"] == "untuned" and s["n"] == 9 and 0 < s["p"] <= 1
        assert s["ci95"][0] <= s["delta"] <= s["ci95"][1]
        assert set(s["per_language"]) == {"en", "zh", "es"}
        assert all(v["n"] == 3 and 0 < v["p"] <= 1 for v in s["per_language"].values())


def test_wilson():
    from crosstune.report.tables import wilson

    lo, hi = wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson(0.0, 10)[0] == 0.0
