"""One small run of the real default model (SmolLM2-135M) with packing: isolation holds, losses are sane."""

from __future__ import annotations

import json

import pytest

from crosstune.cli import main


@pytest.mark.integration
def test_default_model_packed_lora_steps(tmp_path, capsys, default_model_dir, mixture_file):
    cfg = {"data": str(mixture_file), "output_dir": str(tmp_path / "out"), "model": {"name": str(default_model_dir)},
           "tokenize": {"max_length": 64}, "batch": {"size": 1, "mode": "pack"}, "lora": {"r": 4},
           "max_steps": 2, "log": {"every": 1}}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    with pytest.raises(SystemExit) as e:
        main(["train", str(path)])
    err = capsys.readouterr().err
    assert e.value.code == 0, err[-2000:]
    assert "mode pack" in err and "does not isolate" not in err  # sdpa + position_ids keeps examples apart
    log = [json.loads(x) for x in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    # a pretrained instruct model: response loss well below uniform (ln 49152 = 10.8)
    assert all(0.3 < r["loss"] < 6 for r in log) and log[0]["loss_by_language"]
