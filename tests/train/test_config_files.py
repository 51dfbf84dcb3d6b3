"""Configs that travel: `train.py --config runs/a/config.json` reruns run a (same metrics),
options on the command line override one field each, YAML and ml_collections Python files
give the same TrainConfig, and a bad config file is one ``error:`` line."""

import dataclasses
import importlib.util
import json
import pathlib

import pytest

from conftest import require_module
from zoo.train import TrainConfig, load_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("train_cli_config", ROOT / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

RUN = ["--no-progress", "--no-tensorboard"]


def _results(workdir):
    """metrics.jsonl without its timings."""
    timing = ("epoch_seconds", "examples_per_second")
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in timing} for r in lines]


def test_rerun_from_saved_config_gives_the_same_metrics(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    options = ["--epochs", "2", "--batch-size", "128", "--set", "hidden_sizes=(8,)", "--lr", "0.01", "--ema", "0.5"]
    assert train.run([*RUN, *options, "--schedule", "cosine", "--workdir", str(a)]) == 0
    capsys.readouterr()
    assert train.run([*RUN, "--config", str(a / "config.json"), "--workdir", str(b)]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    assert printed.startswith("config: ") and json.loads(printed[len("config: ") :])["ema"] == 0.5
    assert _results(b) == _results(a)
    assert json.loads((b / "config.json").read_text()) == json.loads((a / "config.json").read_text())


def _resolved(argv):
    return dataclasses.asdict(train.resolve_config(train.build_parser().parse_args(argv), argv))


def test_a_command_line_option_overrides_only_its_field(tmp_path):
    saved = dataclasses.asdict(
        TrainConfig(
            epochs=7,
            learning_rate=0.05,
            model_overrides={"hidden_sizes": (16,)},
            optimizer_kwargs={"schedule": "cosine", "clip_norm": 1.0},
            trainable=("out",),
        )
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**saved, "module": "MLP(...)", "schedule_length": 70}))
    base = _resolved(["--config", str(path)])
    assert base == saved  # tuples again where JSON had lists
    for argv, changed in [
        (["--lr", "0.2"], {"learning_rate": 0.2}),
        (["--epochs", "3"], {"epochs": 3}),
        (["--set", "batch_norm=True"], {"model_overrides": {"hidden_sizes": (16,), "batch_norm": True}}),
        (["--clip-norm", "2"], {"optimizer_kwargs": {"schedule": "cosine", "clip_norm": 2.0}}),
        (["--freeze", "hidden_0"], {"frozen": ("hidden_0",), "trainable": ()}),
    ]:
        assert _resolved(["--config", str(path), *argv]) == {**base, **changed}, argv


def test_yaml_and_ml_collections_python_configs(tmp_path):
    require_module("ml_collections")
    expected = TrainConfig(model="dff", epochs=3, model_overrides={"hidden_sizes": (32, 16)}, ema=0.99)
    (tmp_path / "run.yaml").write_text("model: dff\nepochs: 3\nmodel_overrides:\n  hidden_sizes: [32, 16]\nema: 0.99\n")
    (tmp_path / "run.py").write_text(
        "import ml_collections\n\n\ndef get_config():\n"
        "    config = ml_collections.ConfigDict()\n"
        "    config.model = 'dff'\n    config.epochs = 3\n"
        "    config.model_overrides = {'hidden_sizes': (32, 16)}\n    config.ema = 0.99\n"
        "    return config\n"
    )
    assert load_config(tmp_path / "run.yaml") == expected
    assert load_config(tmp_path / "run.py") == expected
    assert load_config(tmp_path / "run.py", epochs=5) == dataclasses.replace(expected, epochs=5)
    shipped = load_config(ROOT / "configs" / "mlp_digits.py")  # the README's example
    assert shipped.model_overrides == {"hidden_sizes": (128,), "dropout_rate": 0.1} and shipped.ema == 0.99


BAD = [
    ("missing.json", None, "config file .*missing.json does not exist"),
    ("bad.json", "{not json", r"bad.json cannot be read \(JSONDecodeError"),
    ("list.yaml", "- 1\n- 2\n", "holds a list, not a mapping"),
    ("broken.yaml", "a: [1\n", r"cannot be read \(.*Error"),
    ("none.py", "x = 1\n", r"defines no get_config\(\)"),
    ("syntax.py", "def get_config(:\n", r"cannot be read \(SyntaxError"),
    ("unknown.json", '{"model": "mlp", "epoch": 3}', r"unknown setting\(s\) 'epoch'"),
    ("value.json", '{"epochs": -1}', "epochs must be positive, got -1"),
    ("config.txt", "model: mlp", r"unknown kind \.txt"),
]


@pytest.mark.parametrize("name, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_config_file_is_one_error_line(tmp_path, capsys, name, text, message):
    import re

    if text is not None:
        (tmp_path / name).write_text(text)
    assert train.run([*RUN, "--config", str(tmp_path / name)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert re.search(message, lines[0]), lines[0]
