import pytest

from crosstune.config import StrictModel, load_config
from crosstune.errors import CrosstuneError


class Opt(StrictModel):
    lr: float = 1e-4
    steps: int = 10


class Cfg(StrictModel):
    name: str
    train: Opt = Opt()


def test_overrides_and_types(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  steps: 5\n")
    cfg = load_config(Cfg, p, ["train.lr=3e-5", "name=y"])
    assert cfg.train.lr == 3e-5 and cfg.train.steps == 5 and cfg.name == "y"


def test_unknown_key_names_field_and_choices(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  learning_rate: 1\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:3: unknown key 'train.learning_rate'; expected one of: lr, steps"):
        load_config(Cfg, p)


def test_bad_value_and_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain: {steps: many}\n")
    with pytest.raises(CrosstuneError, match="field 'train.steps'"):
        load_config(Cfg, p)
    p.write_text("name: [x\n")
    with pytest.raises(CrosstuneError, match=r"c.yaml:\d+: malformed YAML"):
        load_config(Cfg, p)
    p.write_text("name: x\n")
    with pytest.raises(CrosstuneError, match="override 'oops'"):
        load_config(Cfg, p, ["oops"])


class Src(StrictModel):
    path: str


class WithList(StrictModel):
    sources: list[Src]


def test_override_list_items(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sources:\n  - {path: a}\n  - {path: b}\n")
    cfg = load_config(WithList, p, ["sources.1.path=c"])
    assert [s.path for s in cfg.sources] == ["a", "c"]
    with pytest.raises(CrosstuneError, match="not an index of a list of 2"):
        load_config(WithList, p, ["sources.5.path=c"])


def test_a_misspelt_key_is_named_before_the_missing_one(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("nmae: x\n")  # `name` is required: the misspelling, not the missing field, is what to fix
    with pytest.raises(CrosstuneError, match=r"unknown key 'nmae'; expected one of: name, train"):
        load_config(Cfg, p)


def test_keys_of_an_optional_section_are_listed():
    from crosstune.config import validate
    from crosstune.eval.tasks import TaskConfig

    with pytest.raises(CrosstuneError, match=r"unknown key 'cloze.delimitr'; expected one of: candidates, delimiter"):
        validate(TaskConfig, {"name": "c", "kind": "cloze", "default_prompt": "p", "prompts": {"p": "x"},
                              "cloze": {"candidates": "c", "delimitr": " "}}, "t.yaml")
