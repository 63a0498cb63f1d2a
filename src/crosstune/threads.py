"""torch CPU threads, set in one place: the commands' --threads, training, experiments and lazy model loads."""

from __future__ import annotations


def set_threads(n: int | None) -> None:
    """Use `n` torch CPU threads in this process; 0 or None keeps torch's default (all cores). On a machine whose
    cores are busy with other work, fewer threads win: OpenMP threads that share a core spin and stall."""
    if n:
        import torch

        torch.set_num_threads(n)
