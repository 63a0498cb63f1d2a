"""One evaluation engine behind the call cache: `eval run` twice on the same model and tasks makes no model calls
the second time and writes the same summaries; `eval consistency` is the same engine (same bytes); the experiment
runner's consistency suite reuses the same cached calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_main

DEMO_MC = str(Path(__file__).resolve().parents[2] / "src/crosstune/demo/demo_mc.yaml")
COMMON = ["--tasks", DEMO_MC, "--languages", "en,zh,es", "--limit", "4", "--n-boot", "20", "--threads", "1"]


def _timing(folder: Path) -> dict:
    return json.loads((folder / "timing.json").read_text())


def _same_files(a: Path, b: Path, names) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture
def cache(tmp_path) -> list[str]:
    return ["--cache", str(tmp_path / "calls.sqlite")]


def test_second_run_into_a_new_folder_makes_no_model_calls(tiny_model_dir, tmp_path, cache, capsys):
    model = ["--model", str(tiny_model_dir)]
    code, cap = run_main(["eval", "run", *model, *COMMON, *cache, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, cap.err
    first = _timing(tmp_path / "a/demo_mc")
    assert first["model_calls"] == 4 * 3 * 4 and first["cached_calls"] == 0  # items x languages x options
    code, cap = run_main(["eval", "run", *model, *COMMON, *cache, "--out", str(tmp_path / "b")], capsys)
    assert code == 0, cap.err
    second = _timing(tmp_path / "b/demo_mc")
    assert second["model_calls"] == 0 and second["cached_calls"] == 48 and second["prompts_scored"] == 12
    assert re.search(r"model calls: 0, cached: 48", cap.err)
    _same_files(tmp_path / "a/demo_mc", tmp_path / "b/demo_mc",
                ("summary.json", "predictions.jsonl", "run.json", "table.md"))
    _same_files(tmp_path / "a", tmp_path / "b", ("summary.json", "results.md"))
    # generation through the same cache: the second run again makes no calls, same outputs
    gen = [*model, *COMMON, *cache, "--mode", "generate", "--max-new-tokens", "3"]
    for out in ("ga", "gb"):
        code, cap = run_main(["eval", "run", *gen, "--out", str(tmp_path / out)], capsys)
        assert code == 0, cap.err
    assert _timing(tmp_path / "ga/demo_mc")["model_calls"] == 12
    assert _timing(tmp_path / "gb/demo_mc")["model_calls"] == 0
    _same_files(tmp_path / "ga/demo_mc", tmp_path / "gb/demo_mc", ("summary.json", "predictions.jsonl"))


def test_consistency_is_the_same_engine(tiny_model_dir, tmp_path, cache, capsys):
    model = ["--model", str(tiny_model_dir)]
    code, cap = run_main(["eval", "run", *model, *COMMON, *cache, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, cap.err
    code, cap = run_main(["eval", "consistency", *model, *COMMON, *cache, "--mode", "loglik",
                          "--out", str(tmp_path / "con")], capsys)
    assert code == 0, cap.err
    folder = tmp_path / "con/demo_mc/loglik"
    assert _timing(folder)["model_calls"] == 0  # the same requests: answered by the cache
    _same_files(tmp_path / "run/demo_mc", folder, ("summary.json", "predictions.jsonl", "run.json", "table.md"))
    index = json.loads((tmp_path / "con/summary.json").read_text())
    assert index["demo_mc"]["loglik"] == json.loads((folder / "summary.json").read_text())
    assert "demo_mc (loglik" in (tmp_path / "con/results.md").read_text()


def test_a_folder_in_use_is_refused(tiny_model_dir, tmp_path, cache, capsys):
    """The one-writer lock: a second `eval run` on a folder another process is writing gets one error line."""
    import subprocess
    import sys

    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from crosstune.locks import folder_lock\n"
                               f"with folder_lock({str(out)!r}, 'eval run'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, cap = run_main(["eval", "run", "--model", str(tiny_model_dir), *COMMON, *cache, "--out", str(out)],
                             capsys)
        assert code == 2 and "is writing to this folder" in cap.err and "Traceback" not in cap.err
        # every eval command takes the same lock before any work (here before reading its inputs)
        from crosstune.errors import CrosstuneError
        from crosstune.eval.fidelity import run_fidelity
        from crosstune.eval.judge import run_judge

        for call in (lambda: run_fidelity(tmp_path / "none", out), lambda: run_judge("j", "a", ["b"], "pinch", out)):
            with pytest.raises(CrosstuneError, match="is writing to this folder"):
                call()
    finally:
        holder.kill()
        holder.wait()
