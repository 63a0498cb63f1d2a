"""`crosstune data build` end to end through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_main as run_cli
from tests.data.recipe_slices import slices  # noqa: F401  (fixture)
from tests.data.test_build import write_recipe



def test_build_writes_files(tmp_path, slices, capsys):  # noqa: F811
    recipe = write_recipe(tmp_path, slices)
    code, cap = run_cli(["data", "build", str(recipe), "--out", str(tmp_path / "out"), "--seed", "7",
                         "recipe.modes={en2x: 30, x2en: 20}"], capsys)
    assert code == 0, cap.err
    assert cap.out.strip().endswith("train.jsonl")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and set(manifest["counts"]["per_mode"]) == {"en2x", "x2en"}
    assert (tmp_path / "out" / "exclusions.jsonl").exists()
    assert "en2x" in cap.err and "langid" in cap.err


@pytest.mark.parametrize("override, message", [
    ("recipe.modes.en2fr=5", "unknown mode(s) 'en2fr'"),
    ("recipe.languages=[en, fr]", "recipe asks for fr but sources only have en, vi, zh"),
])
def test_bad_recipe_is_one_error_line(tmp_path, slices, capsys, override, message):  # noqa: F811
    recipe = write_recipe(tmp_path, slices)
    code, cap = run_cli(["data", "build", str(recipe), "--out", str(tmp_path / "out"), override], capsys)
    assert code == 2 and cap.err.startswith("error: ") and message in cap.err
    assert "Traceback" not in cap.err


def test_workers_option(tmp_path, slices, capsys):  # noqa: F811
    recipe = write_recipe(tmp_path, slices)
    outs = {}
    for workers in ("1", "2"):
        code, cap = run_cli(["data", "build", str(recipe), "--out", str(tmp_path / workers), "--workers", workers],
                            capsys)
        assert code == 0, cap.err
        outs[workers] = [(tmp_path / workers / f).read_bytes() for f in ("train.jsonl", "exclusions.jsonl")]
    assert outs["1"] == outs["2"]
    code, cap = run_cli(["data", "build", str(recipe), "--out", str(tmp_path / "0"), "--workers", "0"], capsys)
    assert code == 2 and "Traceback" not in cap.err
