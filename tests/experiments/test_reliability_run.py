"""`crosstune run` through the real CLI: a failed stage makes exit status 1 naming it; a second run on a folder in
use refuses with exit 2 and the holder's pid; every invocation leaves a start line in run_history.jsonl."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import run_main
from tests.experiments.conftest import write_experiment


def _failing_experiment(tmp_path, model):
    """The demo mixture and one training config that fails at run time (every row dropped at max_length 9)."""
    exp = write_experiment(tmp_path, model, **{"sweep": {}, "eval": {}, "untuned": False})
    cfg = yaml.safe_load(exp.read_text())
    cfg["data"].pop("heldout")
    cfg["train"]["lora"].pop("eval_data")
    cfg["train"]["lora"]["overrides"] = {"tokenize.max_length": 9, "tokenize.overflow": "drop"}
    exp.write_text(yaml.safe_dump(cfg))
    return exp


def test_failed_stage_exits_1_and_names_it(tmp_path, tiny_model_dir, isolated_env, capsys):
    out = tmp_path / "out"
    code, cap = run_main(["run", str(_failing_experiment(tmp_path, tiny_model_dir)), "--out", str(out)], capsys)
    assert code == 1
    assert "error: 1 stage(s) failed: train/crossin+lora" in cap.err and "Traceback" not in cap.err
    hist = [json.loads(x) for x in (out / "run_history.jsonl").read_text().splitlines()]
    assert [h["event"] for h in hist] == ["start", "end"] and hist[1]["failed"] == ["train/crossin+lora"]


def test_second_run_on_a_folder_in_use_refuses(tmp_path, tiny_model_dir, isolated_env, capsys):
    exp = write_experiment(tmp_path, tiny_model_dir)
    out = tmp_path / "out"
    hold = ("import sys; from crosstune.locks import folder_lock\n"
            "with folder_lock(sys.argv[1], 'run'):\n    print('held', flush=True); sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        code, cap = run_main(["run", str(exp), "--out", str(out)], capsys)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert code == 2
    assert cap.err.startswith(f"error: {out}: another crosstune process (pid {proc.pid}, `crosstune run`")
    assert not (out / "stages").exists() and not (out / "run_history.jsonl").exists()  # nothing touched
