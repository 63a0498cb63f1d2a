"""`crosstune models ...`: prepare (convert) the default or any GGUF model into the cache."""

from __future__ import annotations

import typer

from crosstune.console import console

app = typer.Typer(help="Find, convert and inspect models.", no_args_is_help=True)


@app.command("prepare")
def prepare(model: str = typer.Argument("default", help="'default', a .gguf file, a HF folder or a hub id")) -> None:
    """Convert a model to a regular HF folder in the cache (fetches nothing). Prints the folder last."""
    from crosstune.models.loading import resolve_model

    with console.status(f"preparing {model} ..."):
        folder = resolve_model(model)
    print(folder)
