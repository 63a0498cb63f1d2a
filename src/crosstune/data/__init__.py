"""Data: read instruction sets, align parallel copies, build mixtures by recipe, filter with reasons."""

from crosstune.data.schema import Example, Message

__all__ = ["Example", "Message"]
