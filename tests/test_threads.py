"""torch threads are decided in one place (`crosstune.threads`): every command, training, experiments and lazy
model loads call it, and nothing else in the package calls torch.set_num_threads. Auto (0) takes the cores free
at start; the decision logic is tested with injected cores and load (no timing)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crosstune import threads
from crosstune.threads import decide, set_threads


@pytest.mark.parametrize("cores,load,procs,env,want,why", [
    (2, 2.1, 1, None, 1, "2 cores, load 2.1: 1 free"),      # both cores held by other work: 1, never 0
    (2, 0.1, 1, None, 2, "2 cores, load 0.1: 2 free"),      # idle (background noise under 0.3)
    (2, 0.9, 1, None, 1, "2 cores, load 0.9: 1 free"),      # one core mostly busy
    (2, 7.5, 1, None, 1, "2 cores, load 7.5: 1 free"),      # far oversubscribed: still 1
    (16, 4.0, 1, None, 12, "16 cores, load 4.0: 12 free"),
    (16, 4.0, 4, None, 3, "16 cores, load 4.0: 12 free, 4 processes"),  # a launch of 4 shares the free cores
    (2, 0.0, 4, None, 1, "2 cores, load 0.0: 2 free, 4 processes"),    # more processes than cores: 1 each
    (8, 0.0, 1, 2, 2, "8 cores, load 0.0: 8 free; OMP_NUM_THREADS=2"),  # the user's OMP_NUM_THREADS caps
    (1, 0.0, 1, 4, 1, "1 core, load 0.0: 1 free"),
])
def test_auto_takes_the_free_cores(cores, load, procs, env, want, why):
    d = decide(0, cores, load, procs, env)
    assert (d.threads, d.why) == (want, why)
    assert decide(None, cores, load, procs, env) == d


def test_a_number_is_taken_as_it_is():
    assert decide(3, 2, 5.0).threads == 3 and decide(1, 64, 0.0).threads == 1


@pytest.fixture
def fresh(monkeypatch):
    """A process that has not decided yet, on an injected machine: 2 cores, both busy with other work."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_decided", None)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda cores: 2.1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    yield
    torch.set_num_threads(before)


def test_auto_is_decided_once_said_and_applied(fresh, capsys, monkeypatch):
    assert set_threads(0).threads == 1 and torch.get_num_threads() == 1
    assert "threads: 1 (2 cores, load 2.1: 1 free)" in capsys.readouterr().err
    monkeypatch.setattr(threads, "busy_cores", lambda cores: 0.0)  # the load our own work adds later does not change the decision
    assert set_threads(None).threads == 1 and threads.ensure_threads().threads == 1
    assert capsys.readouterr().err == ""  # said once
    assert set_threads(2).threads == 2 and torch.get_num_threads() == 2  # an explicit number wins
    assert "threads: 2 (as set by --threads or the config)" in capsys.readouterr().err


def test_a_lazy_model_load_decides_when_no_command_did(fresh, tiny_model_dir, capsys):
    from crosstune.models.loading import load_model

    load_model(str(tiny_model_dir))
    assert torch.get_num_threads() == 1 and "threads: 1 (2 cores" in capsys.readouterr().err


def test_this_machine_is_measured():
    cores = threads.usable_cores()
    assert 1 <= cores <= (threads.os.cpu_count() or 1)
    assert threads.busy_cores(cores) >= 0
    assert 1 <= threads.auto().threads <= cores


def test_no_other_place_sets_threads():
    src = Path(__file__).resolve().parents[1] / "src" / "crosstune"
    callers = [p.relative_to(src).as_posix() for p in src.rglob("*.py") if "set_num_threads(" in p.read_text()]
    assert callers == ["threads.py"]
