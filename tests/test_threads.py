"""torch threads are set in one place (`crosstune.threads.set_threads`): every command, training, experiments and
lazy model loads call it, and nothing else in the package calls torch.set_num_threads."""

from __future__ import annotations

from pathlib import Path

import torch

from crosstune.threads import set_threads


def test_set_threads_sets_or_keeps():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(0)
        set_threads(None)
        assert torch.get_num_threads() == 1  # 0 / None: torch's setting is left as it is
    finally:
        torch.set_num_threads(before)


def test_no_other_place_sets_threads():
    src = Path(__file__).resolve().parents[1] / "src" / "crosstune"
    callers = [p.relative_to(src).as_posix() for p in src.rglob("*.py") if "set_num_threads(" in p.read_text()]
    assert callers == ["threads.py"]
