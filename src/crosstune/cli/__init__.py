"""The `crosstune` command: thin wrappers that parse, load a config and call one function per command."""

from __future__ import annotations

import errno
import sys

import typer

from crosstune import __version__
from crosstune.cli import data as data_cli
from crosstune.cli import eval as eval_cli
from crosstune.cli import models as models_cli
from crosstune.cli import quickstart as quickstart_cli
from crosstune.cli import run as run_cli
from crosstune.cli import train as train_cli
from crosstune.errors import CrosstuneError, shorten

# rich_markup_mode=None: click's plain help for every command, where a flag (`--resume`) shows no value
# placeholder (typer's rich panels print `<bool>` after every flag as if it took one); up to 120 columns wide.
app = typer.Typer(help="Cross-lingual instruction tuning, measured language by language.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None,
                  context_settings={"max_content_width": 120})
app.add_typer(data_cli.app, name="data")
app.add_typer(models_cli.app, name="models")
app.add_typer(eval_cli.app, name="eval")
app.command("train")(train_cli.train)
app.command("quickstart")(quickstart_cli.quickstart)
app.command("run")(run_cli.run)


def _version(value: bool) -> None:
    if value:
        print(f"crosstune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Data -> train -> eval -> report for multilingual instruction tuning."""


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage errors: typer >= 0.2x raises its vendored click's (`typer.TyperException`), older typer click's."""
    kinds = [getattr(typer, "TyperException", None)]
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(k for k in kinds if k is not None)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors (ours and click's: a bad option value, an unknown option, a missing argument) become
    one `error: ...` line on stderr and exit status 2."""
    try:
        code = app(args=argv, prog_name="crosstune", standalone_mode=False)
    except CrosstuneError as e:
        print(f"error: {shorten(str(e))}", file=sys.stderr)
        sys.exit(2)
    except _usage_errors() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `crosstune data` alone: the help, as click prints it
            e.show()
            sys.exit(e.exit_code)
        where = e.ctx.command_path if getattr(e, "ctx", None) is not None else "crosstune"
        print(f"error: {where}: {shorten(e.format_message())} (see '{where} --help')", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        print(f"error: {shorten(str(e.filename))}: a file name longer than this system allows", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)  # as click's standalone mode ends: always through SystemExit
