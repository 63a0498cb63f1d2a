"""Option letters, one place: A..Z, and options labelled "(A) text" as SeaEval shows them."""

from __future__ import annotations

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def label(i: int) -> str:
    """`(A)` for option 0."""
    return f"({LETTERS[i]})"


def labelled(choices) -> list[str]:
    """Options as SeaEval shows them: "(A) text"; already-labelled options are kept as they are."""
    if all(c[0:3] == label(i) for i, c in enumerate(choices)):
        return list(choices)
    return [f"{label(i)} {c}" for i, c in enumerate(choices)]
