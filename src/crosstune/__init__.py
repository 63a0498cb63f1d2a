"""crosstune: cross-lingual instruction tuning, measured language by language."""

__version__ = "0.1.0"
