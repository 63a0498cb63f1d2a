"""`crosstune models ...`: prepare (convert) the default or any GGUF model into the cache; render conversations
to the token ids each purpose gets."""

from __future__ import annotations

from pathlib import Path

import typer

from crosstune.console import console

app = typer.Typer(help="Convert models into the cache (prepare) and show the token ids they get (render).",
                  no_args_is_help=True)


@app.command("prepare")
def prepare(model: str = typer.Argument("default", help="'default', a .gguf file, a HF folder or a hub id")) -> None:
    """Convert a model to a regular HF folder in the cache (fetches nothing). Prints the folder last."""
    from crosstune.models.loading import resolve_model

    with console.status(f"preparing {model} ..."):
        folder = resolve_model(model)
    print(folder)


@app.command("render")
def render(
    model: str = typer.Argument(..., help="'default', a HF folder (a trained adapter/merged folder too) or a hub id"),
    messages: Path = typer.Option(..., help="Conversations (JSONL/JSON/Parquet in any format `data` reads)."),
    template: str = typer.Option("auto", help="auto, chat, raw, alpaca, gemma or llama (docs/training.md)."),
    purpose: str = typer.Option("generate", help="train (ids + labels), score (context + last answer) or generate."),
    out: Path = typer.Option(..., help="JSONL: id, purpose, template, ids, text, bos_count (+labels/context_length)."),
    loss_on: str = typer.Option("response", help="train: response, last_turn or all."),
) -> None:
    """Show the token ids a model gets for each conversation: what training, scoring and generation see."""
    from crosstune.data.io import read_examples
    from crosstune.models.loading import load_tokenizer
    from crosstune.models.render_file import write_rendered

    n = write_rendered(read_examples(messages), load_tokenizer(model), template, purpose, out, loss_on)
    print(f"{n} conversations rendered for {purpose} into {out}")
