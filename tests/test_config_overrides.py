"""A mistake in a `key=value` override is blamed on the override (not on the config file it was applied to), with
a "did you mean" for a misspelt key, for every config type that takes overrides."""

from __future__ import annotations

import pytest

from crosstune.config import load_config
from crosstune.errors import CrosstuneError
from crosstune.experiments.plan import demo_dir

DEMO = demo_dir()


def test_a_train_override_typo_names_the_override_and_the_key_meant():
    from crosstune.train.config import TrainConfig

    with pytest.raises(CrosstuneError, match=r"^override 'max_step=5' \(applied to \S+lora_quickstart.yaml\): "
                                             r"unknown key 'max_step'; expected one of: .*; did you mean "
                                             r"'max_steps'\?$"):
        load_config(TrainConfig, DEMO / "lora_quickstart.yaml", ["max_step=5"])
    with pytest.raises(CrosstuneError, match=r"^override 'optim.lrr=1' .*unknown key 'optim.lrr'.*did you mean "
                                             r"'optim.lr'\?$"):
        load_config(TrainConfig, DEMO / "lora_quickstart.yaml", ["optim.lrr=1"])
    with pytest.raises(CrosstuneError, match=r"^override 'optimm.lr=1' .*unknown key 'optimm'.*'optim'\?$"):
        load_config(TrainConfig, DEMO / "lora_quickstart.yaml", ["optimm.lr=1"])  # a section the file lacks
    with pytest.raises(CrosstuneError, match=r"^override 'optim.lr=abc' .*field 'optim.lr': Input should be"):
        load_config(TrainConfig, DEMO / "lora_quickstart.yaml", ["optim.lr=abc"])  # a bad value, too
    with pytest.raises(CrosstuneError, match=r"unknown key 'zzz'; expected one of: [^;]*$"):  # nothing close
        load_config(TrainConfig, DEMO / "lora_quickstart.yaml", ["zzz=1"])


def test_a_typo_in_the_file_still_names_its_line(tmp_path):
    from crosstune.train.config import TrainConfig

    p = tmp_path / "t.yaml"
    p.write_text((DEMO / "lora_quickstart.yaml").read_text().replace("max_steps:", "max_step:"))
    with pytest.raises(CrosstuneError, match=r"^\S+t.yaml:\d+: unknown key 'max_step'.*did you mean 'max_steps'"):
        load_config(TrainConfig, p, ["seed=1"])


def test_experiment_build_and_nested_train_overrides():
    from crosstune.data.build import plan_build
    from crosstune.experiments.config import load_experiment
    from crosstune.experiments.plan import make_plan

    exp = DEMO / "quickstart.yaml"
    with pytest.raises(CrosstuneError, match=r"^override 'treads=1' \(applied to \S+quickstart.yaml\): unknown "
                                             r"key 'treads'.*did you mean 'threads'\?$"):
        load_experiment(exp, ["treads=1"])
    with pytest.raises(CrosstuneError, match=r"override 'max_step=3' \(applied to train.lora .*did you mean "
                                             r"'max_steps'\?$"):
        make_plan(load_experiment(exp, ["train.lora.overrides.max_step=3"]), exp, None)
    with pytest.raises(CrosstuneError, match=r"^override 'recipe.langauges=\[en\]' \(applied to \S+crossin_demo.yaml: "
                                             r"recipe\): unknown key 'langauges'.*did you mean 'languages'\?$"):
        plan_build(DEMO / "crossin_demo.yaml", ["recipe.langauges=[en]"])
    with pytest.raises(CrosstuneError, match=r"^override 'filters.lenght.min_chars=1' .*did you mean "
                                             r"'filters.length'\?$"):
        plan_build(DEMO / "crossin_demo.yaml", ["filters.lenght.min_chars=1"])


def test_the_cli_blames_the_override(capsys):
    from tests.conftest import run_main

    code, cap = run_main(["train", str(DEMO / "lora_quickstart.yaml"), "max_step=5"], capsys)
    assert code == 2 and cap.err.startswith("error: override 'max_step=5'") and "did you mean 'max_steps'" in cap.err
