"""`crosstune run` on 2 real CPU processes (torchrun, gloo) against 1: the consistency and generation suites split
their items, process 0 writes markers, results and reports, and the results equal the one-process run's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.experiments.conftest import write_experiment


@pytest.mark.integration
def test_experiment_suites_on_two_processes_equal_one(tmp_path, tiny_model_dir, isolated_env):
    from crosstune.experiments.runner import run_experiment

    fid = {"kind": "generation", "prompts": ["{demo}/heldout_prompts.jsonl"], "limit": 3, "max_new_tokens": 4,
           "lid": "pycld2", "n_boot": 20, "runs": [{"directive": "none"}]}
    exp = write_experiment(tmp_path, tiny_model_dir, **{"sweep": None, "train": None, "data": None,
                                                        "eval/fid": fid})
    one = run_experiment(exp, tmp_path / "one", report=False)
    assert not one["failed"] and set(one["ran"]) == {"eval/mc/untuned", "eval/fid/untuned"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CROSSTUNE_CACHE": str(tmp_path / "c2")}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(port), "-m", "crosstune", "run", str(exp), "--out", str(tmp_path / "two")],
                       env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("ran 2, cached 0, failed 0, skipped 0 stages") == 1  # process 0 reports for both
    err = " ".join(r.stderr.split())  # rich wraps long lines
    assert "2 processes: 6 prompts each" in err and "(process 1)" in err  # both did work
    assert "model calls: 36, cached: 0" in err  # summed over the processes
    stages = {n: s["dir"] for n, s in one["stages"].items()}
    gen = f"{stages['eval/fid/untuned']}/generate/all_none"
    for rel in (f"{gen}/generations.jsonl", f"{gen}/run.json", f"{stages['eval/fid/untuned']}/fidelity/all_none/"
                "items.jsonl", "results.csv"):
        assert (tmp_path / "two" / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes(), rel
    per_item = one["stages"]["eval/mc/untuned"]["result"]["tasks"]["demo_mc"]["per_item"]
    preds = {d: [json.loads(x) for x in (tmp_path / d / per_item).read_text().splitlines()] for d in ("one", "two")}
    assert [(p["id"], p["language"], p["correct"]) for p in preds["one"]] == \
           [(p["id"], p["language"], p["correct"]) for p in preds["two"]]
    done = json.loads((tmp_path / "two" / stages["eval/fid/untuned"] / "done.json").read_text())
    assert done["result"]["runs"]["all:none"]["per_language"] == \
           one["stages"]["eval/fid/untuned"]["result"]["runs"]["all:none"]["per_language"]
    assert not list((tmp_path / "two").rglob("*.part*"))
