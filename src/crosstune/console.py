"""Shared rich consoles: progress and tables go to stderr so stdout stays machine-readable."""

from rich.console import Console

console = Console(stderr=True)
out = Console()
