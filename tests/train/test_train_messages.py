"""What `crosstune train` says: steps done of the total with the time left (ETA), and no library noise
(transformers' "Loading weights" bars, deprecation warnings); the noise filters end with the command."""

from __future__ import annotations

import json
import logging
import warnings

from crosstune.quiet import WARNINGS_FROM
from crosstune.train import metrics_log
from crosstune.train.metrics_log import Pace


def test_pace_says_steps_elapsed_and_time_left(monkeypatch):
    clock = iter([100.0, 160.0, 220.0, 400.0])  # injected clock: start, then three looks
    monkeypatch.setattr(metrics_log.time, "perf_counter", lambda: next(clock))
    pace = Pace(start_step=10, total=70)  # resumed at step 10
    assert pace.text(20) == "step 20/70, 1m00s, ETA 5m00s"  # 10 steps in 60 s: 50 left take 300 s
    assert pace.text(70) == "step 70/70, 2m00s"  # done: no ETA
    assert pace.due()  # no line for 180 s (400 - 220): a line is due between sparse log records


def test_pace_formats_long_runs(monkeypatch):
    clock = iter([0.0, 7200.0])
    monkeypatch.setattr(metrics_log.time, "perf_counter", lambda: next(clock))
    assert Pace(0, 1000).text(100) == "step 100/1000, 2h00m, ETA 18h00m"


def test_train_shows_eta_and_no_library_noise(tmp_path, capsys, tiny_model_dir, mixture_file):
    from crosstune.cli import main

    c = {"data": str(mixture_file), "output_dir": str(tmp_path / "out"), "model": {"name": str(tiny_model_dir)},
         "tokenize": {"max_length": 160}, "batch": {"size": 2}, "precision": "fp32", "max_steps": 2,
         "save_steps": 0, "log": {"every": 1}}
    (tmp_path / "c.yaml").write_text(json.dumps(c))
    level = logging.getLogger("transformers").level
    try:
        main(["train", str(tmp_path / "c.yaml")])
    except SystemExit as e:
        assert not e.code
    err = capsys.readouterr().err
    assert "step 1/2, " in err and ", ETA " in err and "step 2/2, " in err
    assert "Loading weights" not in err and "Warning" not in err, err
    assert logging.getLogger("transformers").level == level  # scoped: the process's settings come back
    assert not any(getattr(f[3], "pattern", f[3]) == WARNINGS_FROM for f in warnings.filters)
