"""Resume reads JSON and safetensors only: a checkpoint holds no pickle, a planted pickle is never loaded (it would
run a command), a tampered state file is one `error:` line; adapter_config.json lists target_modules in order."""

from __future__ import annotations

import json
import pickle

import pytest

from crosstune.cli import main


class _Payload:  # unpickling this writes a marker file: what a crafted checkpoint would do with a shell command
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _train(capsys, cfg, *extra) -> tuple[int, str]:
    try:
        main(["train", str(cfg), *extra])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    return code, capsys.readouterr().err


@pytest.fixture
def trained(tmp_path, tiny_model_dir, mixture_file, capsys):
    out = tmp_path / "out"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"data": str(mixture_file), "output_dir": str(out), "model": {"name": str(tiny_model_dir)},
                               "tokenize": {"max_length": 160}, "batch": {"size": 2}, "precision": "fp32",
                               "max_steps": 2, "save_steps": 1, "save_total_limit": 3, "threads": 1}))
    code, err = _train(capsys, cfg)
    assert code == 0, err
    return cfg, out


def test_checkpoint_has_no_pickle_and_a_planted_one_is_not_loaded(trained, tmp_path, capsys):
    cfg, out = trained
    ckpt = out / "checkpoint-1"
    names = sorted(p.name for p in ckpt.iterdir())
    assert not [n for n in names if n.endswith((".pkl", ".bin", ".pt"))], names
    assert {"state.json", "state.safetensors", "optimizer_0.json", "scheduler_0.json", "rng_0.json",
            "trainable.safetensors", "run.json"} <= set(names)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 1
    # what accelerate's load_state would unpickle with weights_only=False, and its other pickle names
    marker = tmp_path / "pwned"
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        (ckpt / name).write_bytes(pickle.dumps(_Payload(str(marker))))
    for later in out.glob("checkpoint-2"):
        import shutil

        shutil.rmtree(later)
    code, err = _train(capsys, cfg, "--resume")
    assert code == 0, err
    assert "resumed from" in err and not marker.exists()
    assert json.loads((out / "checkpoint-2" / "state.json").read_text())["step"] == 2


def test_tampered_state_is_a_clean_error(trained, capsys):
    cfg, out = trained
    (out / "checkpoint-2" / "state.json").write_text("{not json")
    code, err = _train(capsys, cfg, "--resume")
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and "state.json: not a readable crosstune checkpoint" in last
    assert "Traceback" not in err


def test_adapter_config_lists_target_modules_sorted(trained):
    _, out = trained
    cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert cfg["target_modules"] == sorted(cfg["target_modules"]) and len(cfg["target_modules"]) > 1
