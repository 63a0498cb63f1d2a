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
    assert last == f"error: {cfg}: field 'data': no such data file '{tmp_path / 'nope.jsonl'}'"
