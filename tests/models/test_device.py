"""Device and dtype choice and the out-of-memory message: the CUDA paths checked on the CPU as far as they can be."""

from __future__ import annotations

import pytest
import torch

from crosstune.errors import CrosstuneError
from crosstune.models import device as dev
from crosstune.models.backends.base import LoglikRequest
from crosstune.train.loop import use_bf16


@pytest.fixture
def two_gpus(monkeypatch):
    """A torch that reports two bf16-capable GPUs (device objects only; nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


def test_auto_is_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.pick_device("auto") == torch.device("cpu")
    assert dev.pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert use_bf16("auto", torch.device("cpu")) == torch.cpu._is_avx512_bf16_supported()


def test_auto_takes_this_process_gpu(two_gpus, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert dev.pick_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")  # the second process of `accelerate launch` on one node
    assert dev.pick_device("auto") == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "3")  # more processes than GPUs: shared round-robin
    assert dev.pick_device("auto") == torch.device("cuda", 1)
    assert dev.pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(CrosstuneError, match="only 2 CUDA device"):
        dev.pick_device("cuda:2")


def test_dtype_on_a_gpu(two_gpus):
    gpu = torch.device("cuda", 0)
    assert dev.pick_dtype("auto", gpu) == torch.bfloat16
    assert dev.pick_dtype("float16", gpu) == torch.float16
    assert use_bf16("auto", gpu)
    assert not use_bf16("fp32", gpu)


def test_bad_names_are_one_line_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CrosstuneError, match="sees no CUDA GPU"):
        dev.pick_device("cuda")
    with pytest.raises(CrosstuneError, match="expected auto, cpu, cuda"):
        dev.pick_device("tpu7")
    with pytest.raises(CrosstuneError, match="expected auto, float32"):
        dev.pick_dtype("fp8", torch.device("cpu"))
    with pytest.raises(CrosstuneError, match="float16' on the CPU"):
        dev.pick_dtype("float16", torch.device("cpu"))


def test_out_of_memory_recognised_and_named():
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    assert dev.is_out_of_memory(oom("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert dev.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not dev.is_out_of_memory(RuntimeError("shape mismatch"))
    err = dev.out_of_memory("log-likelihood", "batch size 64", "a smaller --batch-size", "cpu")
    assert str(err).startswith("log-likelihood: out of memory at batch size 64; set a smaller --batch-size")


def test_backend_places_model_and_reports_oom(tiny_model_dir, monkeypatch):
    from crosstune.models.backends.hf import HFBackend

    b = HFBackend(str(tiny_model_dir), batch_size=8, device="cpu")
    assert b.device == torch.device("cpu")
    ok = b.loglikelihood([LoglikRequest("Question: 1+1=", " 2"), LoglikRequest("Question: 1+1=", " 3")])
    assert len(ok) == 2 and all(r.logprob < 0 for r in ok)

    def boom(*a, **k):
        raise getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)("CUDA out of memory.")

    monkeypatch.setattr(b.model, "get_decoder", lambda: boom)  # the failure a too-large batch meets on a GPU
    monkeypatch.setattr(b.model, "forward", boom)
    with pytest.raises(CrosstuneError, match=r"log-likelihood: out of memory at batch size 8 \(2 requests\)"):
        b.loglikelihood([LoglikRequest("Question: 1+1=", " 2"), LoglikRequest("Question: 1+1=", " 3")])
