"""TensorBoard event files are written when tensorboard is installed, read back equal to log.jsonl, and a
resumed log drops what a killed run wrote after its checkpoint (JSONL and TensorBoard alike)."""

from __future__ import annotations

import json

import pytest

from crosstune.train.metrics_log import MetricsLog

pytest.importorskip("tensorboard")


def scalars(out, tag: str, digits: int = 5) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return [(e.step, round(e.value, digits)) for e in acc.Scalars(tag)]


def rec(step: int, loss: float) -> dict:
    return {"step": step, "loss": loss, "loss_by_language": {"en": loss + 1, "zh": loss + 2}, "grad_norm": None}


def test_events_are_written_and_a_resume_replaces_steps_after_the_checkpoint(tmp_path):
    log = MetricsLog(tmp_path, True, None, use_tb=True, use_wandb=False, config={})
    for s in (1, 2, 3, 4):
        log.write(rec(s, 10.0 + s))
    log.close()
    assert scalars(tmp_path, "loss") == [(1, 11.0), (2, 12.0), (3, 13.0), (4, 14.0)]
    assert scalars(tmp_path, "loss_by_language/zh")[0] == (1, 13.0)
    # killed after step 4, resumed from the checkpoint of step 2: steps 3-4 are written again with new values
    log = MetricsLog(tmp_path, True, 2, use_tb=True, use_wandb=False, config={})
    for s in (3, 4, 5):
        log.write(rec(s, 20.0 + s))
    log.close()
    assert scalars(tmp_path, "loss") == [(1, 11.0), (2, 12.0), (3, 23.0), (4, 24.0), (5, 25.0)]
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in lines] == [(1, 11.0), (2, 12.0), (3, 23.0), (4, 24.0), (5, 25.0)]


def test_training_run_writes_the_logged_losses_to_tensorboard(tmp_path, capsys, tiny_model_dir, mixture_file):
    from crosstune.cli import main

    cfg = {"data": str(mixture_file), "output_dir": str(tmp_path / "out"), "model": {"name": str(tiny_model_dir)},
           "tokenize": {"max_length": 160}, "batch": {"size": 2}, "precision": "fp32", "max_steps": 3,
           "log": {"every": 1}}
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit) as e:
        main(["train", str(tmp_path / "c.yaml")])
    assert e.value.code == 0, capsys.readouterr().err[-2000:]
    out = tmp_path / "out"
    logged = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    got = scalars(out, "loss", digits=12)  # float32 in the event file
    assert [s for s, _ in got] == [r["step"] for r in logged]
    assert [v for _, v in got] == pytest.approx([r["loss"] for r in logged], abs=1e-5)  # log.jsonl rounds to 6 places
    assert [s for s, _ in scalars(out, "loss_by_language/en")] == [1, 2, 3]
