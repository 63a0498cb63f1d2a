"""`crosstune data ...`: inspect, align and build instruction data (one module per command)."""

from __future__ import annotations

import typer

from crosstune.cli.data_align import align
from crosstune.cli.data_build import build
from crosstune.cli.data_inspect import inspect
from crosstune.cli.data_translate import translate
from crosstune.cli.data_xinstruct import xinstruct

app = typer.Typer(help="Read, align, filter and mix instruction data.", no_args_is_help=True)
app.command("inspect")(inspect)
app.command("align")(align)
app.command("build")(build)
app.command("translate")(translate)
app.command("xinstruct")(xinstruct)
