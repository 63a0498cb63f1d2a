"""Shared rich consoles: progress goes to stderr so stdout stays machine-readable."""

import sys

from rich.console import Console

# Piped output (logs, CI) gets a wide fixed width instead of rich's 80 columns, so tables stay readable.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
out = Console(width=None if sys.stdout.isatty() else 140)
