"""The one resolution rule (crosstune.paths): absolute as is; relative under the data root (--data-root over
$CROSSTUNE_DATA), then next to the config, then in the working directory; ./ and ../ skip the data root."""

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
    with pytest.raises(CrosstuneError, match="data file 'b/y.jsonl': not found"):
        paths.resolve("b/y.jsonl")


def test_one_rule_root_then_config_then_working_directory(tmp_path, monkeypatch):
    root, conf, work = tmp_path / "root", tmp_path / "repo" / "recipes", tmp_path / "work"
    for d in (root, conf, work):
        d.mkdir(parents=True)
    for d in (root, conf, work):
        (d / "x.jsonl").write_text(d.name)
    monkeypatch.chdir(work)
    monkeypatch.setenv("CROSSTUNE_DATA", str(root))
    look = paths.Lookup(conf / "r.yaml")
    assert look("x.jsonl") == root / "x.jsonl"  # the data root first
    assert paths.Lookup(conf / "r.yaml", work)("x.jsonl") == work / "x.jsonl"  # --data-root over the variable
    (root / "x.jsonl").unlink()
    assert look("x.jsonl") == conf / "x.jsonl"  # then next to the config
    (conf / "x.jsonl").unlink()
    assert look("x.jsonl") == work / "x.jsonl"  # then the working directory
    assert look(str(work / "x.jsonl")) == work / "x.jsonl"  # absolute as is
    (root / "y.jsonl").write_text("")
    (conf / "y.jsonl").write_text("")
    assert look("./y.jsonl") == conf / "y.jsonl"  # ./ and ../ never look under the data root
    assert look.spelled("x.jsonl") == "x.jsonl" and look.spelled("y.jsonl") == str(root / "y.jsonl")


def test_the_error_names_config_field_places_and_how_to_set_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROSSTUNE_DATA", raising=False)
    conf = tmp_path / "c" / "recipe.yaml"
    with pytest.raises(CrosstuneError) as e:
        paths.Lookup(conf)("d/x.jsonl", "sources.0.path")
    assert str(e.value) == (f"{conf}: field 'sources.0.path': 'd/x.jsonl': not found (looked in "
                            f"{tmp_path / 'c' / 'd' / 'x.jsonl'}, {tmp_path / 'd' / 'x.jsonl'}); no data root is set "
                            "(export CROSSTUNE_DATA=DIR or pass --data-root DIR)")
    monkeypatch.setenv("CROSSTUNE_DATA", str(tmp_path / "gone"))
    with pytest.raises(CrosstuneError, match=r"gone/d/x.jsonl|\$CROSSTUNE_DATA=.*gone is not a folder"):
        paths.Lookup(conf)("d/x.jsonl", "sources.0.path")
    monkeypatch.setenv("CROSSTUNE_DATA", str(tmp_path))
    with pytest.raises(CrosstuneError, match=rf"looked in {tmp_path / 'd' / 'x.jsonl'}, .*; the data root is "):
        paths.Lookup(conf)("d/x.jsonl", "sources.0.path")
