"""The one YAML reader: aliases bounded, recursive aliases refused, sizes bounded, lines named, key lists given."""

from __future__ import annotations

import pytest

from crosstune.config import MAX_CONFIG_BYTES, StrictModel, apply_overrides, load_config, read_yaml
from crosstune.errors import CrosstuneError

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
BOMB = "l0: &l0 lol\n" + LAUGHS  # 9**9 = 387 million strings once expanded


@pytest.mark.parametrize("where", ["top", "vars"])
def test_billion_laughs_experiment_refused_before_any_copy(tmp_path, where):
    from crosstune.experiments.config import load_experiment

    p = tmp_path / "exp.yaml"
    body = BOMB if where == "top" else "vars:\n" + "".join("  " + x + "\n" for x in BOMB.splitlines())
    p.write_text("name: x\n" + body)
    with pytest.raises(CrosstuneError, match=r"exp.yaml:\d+: this value expands to more than 1000000 values "
                                             r"through YAML aliases"):
        load_experiment(p)


def test_recursive_alias_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nloop: &a [1, *a]\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:2: an alias refers to a value that contains it"):
        read_yaml(p)
    with pytest.raises(CrosstuneError, match=r"override 'x=&a \[\*a\]'.*recursive"):
        apply_overrides({}, ["x=&a [*a]"])


def test_small_aliases_still_work(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("base: &b {lr: 1, steps: 2}\nother: {<<: *b, steps: 3}\nlist: [*b, *b]\n")
    data = read_yaml(p)
    assert data["other"] == {"lr": 1, "steps": 3} and data["list"] == [{"lr": 1, "steps": 2}] * 2


def test_huge_file_and_huge_value_refused_fast(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data: " + "x" * (MAX_CONFIG_BYTES + 10) + "\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml: \d+ bytes; a config file holds at most 4194304"):
        read_yaml(p)
    p.write_text("name: x\ndata: " + "x" * (2 << 20) + "\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:2: a value of 2097152 characters \(at most 1048576\)"):
        read_yaml(p)


class Inner(StrictModel):
    path: str
    weight: float = 1.0


class Cfg(StrictModel):
    name: str
    sources: list[Inner] = []
    named: dict[str, Inner] = {}


def test_validation_errors_name_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nsources:\n  - path: a\n  - path: b\n    weight: heavy\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:5: field 'sources.1.weight': Input should be a valid number"):
        load_config(Cfg, p)
    # an override replaces the file's value: the error names the override, not a line of the file
    with pytest.raises(CrosstuneError, match=r"^override 'sources.0.weight=light' \(applied to \S+c.yaml\): "
                                             r"field 'sources.0.weight'"):
        load_config(Cfg, p, ["sources.1.weight=2", "sources.0.weight=light"])


def test_unknown_key_under_a_dict_of_models_lists_the_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nnamed:\n  a: {path: p, wieght: 2}\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:3: unknown key 'named.a.wieght'; expected one of: path, "
                                             r"weight; did you mean 'named.a.weight'\?$"):
        load_config(Cfg, p)


@pytest.mark.parametrize("body, message", [
    ("data:\n  crossin: {recipee: r.yaml}\n", "exp.yaml:3: unknown key 'data.crossin.recipee'; "
                                               "expected one of: recipe, overrides, seed"),
    ("eval:\n  mc: {kind: consistency, tasks: [t], limt: 3}\n",
     "exp.yaml:3: unknown key 'eval.mc.limt'; expected one of: kind, tasks, languages, mode, limit"),
    ("arms:\n  - {name: a, data: d, trian: t}\n", "exp.yaml:3: unknown key 'arms.0.trian'; expected one of: name, "
                                                  "data, train"),
])
def test_experiment_key_typos_list_the_right_keys(tmp_path, body, message):
    from crosstune.experiments.config import load_experiment

    p = tmp_path / "exp.yaml"
    p.write_text("name: x\n" + body)
    with pytest.raises(CrosstuneError) as e:
        load_experiment(p)
    assert message in str(e.value)
