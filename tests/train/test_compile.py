"""`model.compile`: the norms (`auto` on a CPU with a compiler) or the decoder layers run through torch.compile and
train as without it (same RNG stream)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from crosstune.errors import CrosstuneError
from crosstune.train.config import TrainConfig
from crosstune.train.loop import train
from crosstune.train.compile import compile_layers


def run(tmp_path: Path, model, data, compile) -> tuple[list[dict], dict]:
    out = tmp_path / f"compile-{compile}"
    cfg = TrainConfig.model_validate({
        "data": str(data), "output_dir": str(out), "eval_rows": 4, "model": {"name": str(model), "compile": compile},
        "tokenize": {"max_length": 160}, "batch": {"size": 2}, "precision": "fp32", "max_steps": 3,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1}, "log": {"every": 1, "tensorboard": False}, "threads": 1})
    train(cfg)
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return log, load_file(out / "adapter" / "adapter_model.safetensors")


@pytest.mark.parametrize("mode", [True, "norms"])  # true: the earlier boolean form, = layers
def test_compiled_layers_or_norms_train_like_eager(tmp_path, tiny_model_dir, mixture_file, mode):
    from torch._dynamo.utils import counters

    eager_log, eager_adapter = run(tmp_path, tiny_model_dir, mixture_file, "off")
    torch._dynamo.reset()  # earlier tests' runs (auto = norms) compiled the same code in this process
    before = counters["stats"]["unique_graphs"]
    log, adapter = run(tmp_path, tiny_model_dir, mixture_file, mode)
    assert counters["stats"]["unique_graphs"] > before  # the layers really went through dynamo
    # same batches, same dropout masks (drawn outside the graphs): losses equal up to fp32 reordering
    assert [r["tokens"] for r in log] == [r["tokens"] for r in eager_log]
    for a, b in zip(log, eager_log):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert log[-1]["eval_loss"] == pytest.approx(eager_log[-1]["eval_loss"], rel=1e-4)
    assert adapter.keys() == eager_adapter.keys()  # no `_orig_mod.` in saved names
    for k in adapter:
        assert torch.allclose(adapter[k], eager_adapter[k], atol=1e-5)


def test_model_without_a_layer_list_is_an_error():
    class Decoderless(torch.nn.Module):
        def get_decoder(self):
            return self

    with pytest.raises(CrosstuneError, match="model.compile"):
        compile_layers(Decoderless())


def test_auto_compiles_the_norms_on_a_cpu_where_inductor_works(tiny_model_dir):
    from crosstune.train.compile import inductor_works
    from crosstune.train.model import build_model

    assert inductor_works()  # this machine (and CI) has a C++ compiler
    cfg = TrainConfig.model_validate({"data": "x", "output_dir": "o", "model": {"name": str(tiny_model_dir)}})
    assert cfg.model.compile == "auto"
    model = build_model(cfg, verbose=False)
    norms = [m for m in model.modules() if type(m).__name__.endswith("RMSNorm")]
    assert len(norms) == 5 and all(m._compiled_call_impl is not None for m in norms)  # 2 layers x 2 + final
    assert TrainConfig.model_validate({"data": "x", "output_dir": "o", "model": {"compile": False}}).model.compile == "off"
