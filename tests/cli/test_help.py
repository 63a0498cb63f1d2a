"""Every command's --help: flags show no value placeholder (`--resume`, not `--resume <bool>`), and what a
command group promises is what its commands do."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from crosstune.cli import app


def _commands(cmd, path: tuple[str, ...] = ()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():  # a group (typer vendors its own click)
        yield from _commands(sub, (*path, name))


def test_no_command_shows_a_placeholder_after_a_flag():
    root = typer.main.get_command(app)
    runner = CliRunner()
    flags = 0
    for path, cmd in _commands(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        for p in cmd.params:
            if getattr(p, "is_flag", False) and p.opts[0].startswith("--"):
                flags += 1
                line = next(x for x in result.output.splitlines() if x.strip().startswith(p.opts[0]))
                assert "<" not in line.split(p.opts[0], 1)[1].split("  ")[0], (path, line)  # nothing after it
    assert flags >= 5  # --resume, --version, eval flags...


def test_the_models_group_says_what_it_does():
    out = CliRunner().invoke(app, ["models", "--help"], env={"COLUMNS": "120"}).output
    assert "Find" not in out and "prepare" in out and "render" in out
