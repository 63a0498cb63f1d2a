"""The data root: --data-root over $CROSSTUNE_DATA; relative paths under it, next to the config, or in the cwd."""

import pytest

from crosstune import paths
from crosstune.errors import CrosstuneError


def test_data_root_order_and_resolution(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jsonl").write_text("{}\n")
    monkeypatch.delenv("CROSSTUNE_DATA", raising=False)
    assert paths.data_root() is None
    monkeypatch.setenv("CROSSTUNE_DATA", str(tmp_path))
    assert paths.data_root() == tmp_path and paths.data_root(tmp_path / "a") == tmp_path / "a"
    assert paths.resolve("a/x.jsonl") == tmp_path / "a" / "x.jsonl"
    assert paths.resolve("x.jsonl", config=tmp_path / "a" / "task.yaml") == tmp_path / "a" / "x.jsonl"
    with pytest.raises(CrosstuneError, match="--data-root /nonexistent: no such folder"):
        paths.data_root("/nonexistent")
    with pytest.raises(CrosstuneError, match="data file b/y.jsonl: not found"):
        paths.resolve("b/y.jsonl")


def test_find_tries_the_working_directory_then_the_config_folders(tmp_path, monkeypatch):
    """Recipes, experiments, X-Instruction and translate configs name files through `paths.find`."""
    from crosstune.errors import CrosstuneError
    from crosstune.paths import find

    work, conf = tmp_path / "work", tmp_path / "repo" / "recipes"
    work.mkdir()
    conf.mkdir(parents=True)
    (conf.parent / "data.jsonl").write_text("{}\n")
    monkeypatch.chdir(work)
    assert find("data.jsonl", [conf, conf.parent]) == conf.parent / "data.jsonl"
    (work / "data.jsonl").write_text("{}\n")
    assert find("data.jsonl", [conf, conf.parent]) == work / "data.jsonl"  # the working directory first
    assert find(str(conf.parent / "data.jsonl"), []) == conf.parent / "data.jsonl"
    with pytest.raises(CrosstuneError, match=r"^recipe 'nope.yaml': no such file \(tried .*work/nope.yaml, "):
        find("nope.yaml", [conf], "recipe")
