"""The data model, re-exported from `crosstune.schema` (its home below every package) so old imports keep working."""

from crosstune.schema import ROLES, Example, Message

__all__ = ["ROLES", "Example", "Message"]
