"""`crosstune train` user errors name the config file and the field."""

from __future__ import annotations

import json

from tests.conftest import run_main


def test_missing_data_file_names_config_and_field(tmp_path, tiny_model_dir, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"data": str(tmp_path / "nope.jsonl"), "output_dir": str(tmp_path / "out"),
                               "model": {"name": str(tiny_model_dir)}, "max_steps": 1}))
    code, cap = run_main(["train", str(cfg)], capsys)
    last = cap.err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in cap.err
    assert last == f"error: {cfg}: field 'data': '{tmp_path / 'nope.jsonl'}': no such file"


def test_relative_data_is_looked_up_by_the_data_root_rule(tmp_path, tiny_model_dir, capsys, monkeypatch):
    """A relative `data` is looked up under --data-root, beside the config, then in the working directory."""
    conf, root = tmp_path / "conf", tmp_path / "root"
    conf.mkdir()
    root.mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = conf / "c.yaml"
    cfg.write_text(json.dumps({"data": "rows/x.jsonl", "output_dir": str(tmp_path / "out"),
                               "model": {"name": str(tiny_model_dir)}, "max_steps": 1}))
    code, cap = run_main(["train", str(cfg), "--data-root", str(root)], capsys)
    assert code == 2 and "Traceback" not in cap.err
    assert cap.err.strip().splitlines()[-1] == (
        f"error: {cfg}: field 'data': 'rows/x.jsonl': not found (looked in {root / 'rows/x.jsonl'}, "
        f"{conf / 'rows/x.jsonl'}, {tmp_path / 'rows/x.jsonl'}); the data root is {root}")
