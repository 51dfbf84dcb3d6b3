"""Pretrained weights: zoo.save_pretrained writes safetensors + config.json + a model card,
create_model(name, pretrained=...) reads them back from a folder, from huggingface_hub's
cache (offline: a cache laid out here, never the network), from torchvision files, and from
the weights shipped with zoo, whose test accuracy is the README's."""

import json
import os
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_compile, require, require_module

import zoo
from zoo import pretrained

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = {"hidden_sizes": (8,), "batch_norm": True}  # params and batch_stats


def _small_mlp(seed=0):
    model = zoo.create_model("mlp", **SMALL)
    variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((2, *model.input_shape)))
    # Batch statistics away from their initial 0 / 1, so a mix-up of collections shows.
    variables = jax.tree.map(lambda v: v + 0.25, variables)
    return model, variables


def _assert_same(a, b):
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, a), jax.tree.map(np.asarray, b))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, variables = _small_mlp()
    folder = tmp_path_factory.mktemp("pretrained") / "mlp-digits"
    zoo.save_pretrained(
        variables,
        "mlp",
        model,
        folder,
        dataset="digits",
        metrics={"accuracy": 0.5, "loss": 1.25},
        command="python train.py --set hidden_sizes=(8,) --set batch_norm=True",
    )
    return folder, model, variables


def test_save_then_load_gives_the_same_model_and_variables(saved):
    folder, model, variables = saved
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors"]
    loaded_model, loaded = zoo.create_model("mlp", pretrained=str(folder))
    assert loaded_model == model
    _assert_same(loaded, variables)
    x = np.random.default_rng(0).uniform(size=(3, *model.input_shape)).astype(np.float32)
    np.testing.assert_array_equal(loaded_model.apply(loaded, x), model.apply(variables, x))
    # Overrides apply on top of the saved config (a rate has no variables).
    dropout_model, _ = zoo.create_model("mlp", pretrained=folder, dropout_rate=0.5)
    assert dropout_model.dropout_rate == 0.5 and dropout_model.hidden_sizes == (8,)


def test_the_files_are_what_the_ecosystem_reads(saved):
    """safetensors under flattened paths, the full config in JSON, a card with the paper,
    parameter count, command and metrics."""
    from safetensors.numpy import load_file

    folder, model, variables = saved
    flat = load_file(folder / "model.safetensors")
    assert set(flat) == {
        "params/hidden_0/kernel",
        "params/norms_0/scale",
        "params/norms_0/bias",
        "params/out/kernel",
        "params/out/bias",
        "batch_stats/norms_0/mean",
        "batch_stats/norms_0/var",
    }
    np.testing.assert_array_equal(flat["params/out/kernel"], variables["params"]["out"]["kernel"])
    np.testing.assert_array_equal(flat["batch_stats/norms_0/var"], variables["batch_stats"]["norms_0"]["var"])
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "mlp" and config["dataset"] == "digits"
    assert config["config"] == {
        **json.loads(json.dumps(zoo.model_info("mlp")["config"])),
        "hidden_sizes": [8],
        "batch_norm": True,
    }
    # 64*8 (hidden, no bias before batch norm) + 8+8 (scale, bias) + 8*10+10 (output)
    assert config["parameters"] == 64 * 8 + 16 + 8 * 10 + 10 == 618
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: zoo\n")
    for part in (zoo.model_info("mlp")["paper"], "Parameters: 618", "| accuracy | 0.5000 |", "--set hidden_sizes=(8,)"):
        assert part in card


def test_load_errors_are_one_clear_line(saved, tmp_path):
    folder, model, variables = saved
    cases = {}

    def copy(name, weights=True):
        target = tmp_path / name
        target.mkdir()
        (target / "config.json").write_text((folder / "config.json").read_text())
        if weights:
            (target / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
        return target

    cases[str(tmp_path / "absent")] = (r"is not a folder, a Hugging Face Hub id .* or weights shipped", {})
    empty = tmp_path / "empty"
    empty.mkdir()
    cases[str(empty)] = (r"empty has no config\.json", {})
    cases[str(copy("no_weights", weights=False))] = (r"no_weights has no model\.safetensors", {})
    corrupt = copy("corrupt")
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases[str(corrupt)] = (r"model\.safetensors cannot be read as safetensors weights", {})
    bad_json = copy("bad_json")
    (bad_json / "config.json").write_text("{not json")
    cases[str(bad_json)] = (r"config\.json is not valid JSON", {})
    # A shape override that no longer fits the saved weights.
    cases[str(folder)] = (
        r"shape mismatch\(es\): params/out/bias \(10,\) in the weights .*, \(4,\) in the model",
        {"num_outputs": 4},
    )
    # A variable the model has no place for, and one it lacks.
    extra = copy("extra")
    from safetensors.numpy import load_file, save_file

    flat = load_file(extra / "model.safetensors")
    flat["params/extra/kernel"] = np.zeros(3, np.float32)
    del flat["batch_stats/norms_0/var"]
    save_file(flat, extra / "model.safetensors")
    cases[str(extra)] = (
        r"1 variable\(s\) the model needs are not in .*batch_stats/norms_0/var; 1 variable\(s\) .* have no place in the model: params/extra/kernel",
        {},
    )
    for source, (message, overrides) in cases.items():
        with pytest.raises(ValueError, match=message) as error:
            zoo.create_model("mlp", pretrained=source, **overrides)
        assert "\n" not in str(error.value), source
    with pytest.raises(ValueError, match=r"holds weights of model 'mlp', not 'dff'"):
        zoo.create_model("dff", pretrained=str(folder))


def _hub_cache(root: Path, repo: str, files: Path, revision="0" * 40) -> None:
    """huggingface_hub's cache layout (as hf_hub_download leaves it) for ``repo``'s main branch."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "README.md"):
        (snapshot / name).write_bytes((files / name).read_bytes())


def test_hub_ids_read_huggingface_hubs_offline_cache(saved, tmp_path, monkeypatch):
    require_module("huggingface_hub")
    from huggingface_hub import constants

    folder, model, variables = saved
    _hub_cache(tmp_path, "someone/mlp-digits", folder)
    # What HF_HUB_OFFLINE=1 and HF_HUB_CACHE=tmp_path set when huggingface_hub is imported.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _, loaded = zoo.create_model("mlp", pretrained="someone/mlp-digits")
    _assert_same(loaded, variables)
    with pytest.raises(
        ValueError, match=r"'someone/absent' .*HF_HUB_OFFLINE is set: only the cache .* was read"
    ) as error:
        zoo.create_model("mlp", pretrained="someone/absent")
    assert "\n" not in str(error.value)


def test_torchvision_weights_from_a_file_or_torch_hubs_cache(tmp_path, monkeypatch):
    """``torchvision:PATH`` and ``torchvision:NAME`` (NAME-<hash>.pth in torch hub's cache)
    import a torchvision-layout state dict; the result computes what the torch twin does."""
    torch = require_module("torch")
    from zoo.bench import torch_models

    overrides = {"input_shape": (16, 16, 3), "num_classes": 4, "stage_sizes": (1, 1), "width": 8, "conv_impl": "xla"}
    torch.manual_seed(0)
    net = torch_models.ResNet(torch_models.BasicBlock, (1, 1), num_classes=4, width=8).eval()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(net.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    model = zoo.create_model("resnet18", **overrides)
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))  # one compile for both sources
    for source in ("torchvision:resnet18", f"torchvision:{checkpoints / 'resnet18-f37072fd.pth'}"):
        loaded_model, variables = zoo.create_model("resnet18", pretrained=source, **overrides)
        assert loaded_model == model
        got = forward(variables, x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(), err_msg=source)
    with pytest.raises(ValueError, match=r"no resnet34-\*\.pth in torch hub's cache .*torchvision\.models\.resnet34"):
        zoo.create_model("resnet34", pretrained="torchvision:resnet34")


# --------------------------------------------------------------------------------------
# The weights shipped with zoo: the README's test accuracy, offline
# --------------------------------------------------------------------------------------


def _readme_accuracy(model: str, dataset: str) -> float:
    """The test accuracy the README's pretrained-weights table gives for ``model`` on ``dataset``."""
    row = re.search(rf"^\| `{model}` \| `{dataset}` \|.*?\| ([0-9.]+) \|", README.read_text(), re.M)
    assert row, f"README.md has no pretrained-weights row for {model} on {dataset}"
    return float(row[1])


@pytest.mark.parametrize("model_name, dataset", [("mlp", "digits"), ("lenet5", "fashion_mnist")])
def test_shipped_weights_reach_the_readmes_accuracy(model_name, dataset):
    if dataset == "fashion_mnist":
        require(os.path.isdir("/usr/share/datasets/fashion-mnist"), "apt-get install dataset-fashion-mnist")
    assert dataset in pretrained.shipped_weights(model_name)
    folder = pretrained.shipped_weights(model_name)[dataset]
    assert all(f.stat().st_size < 1_000_000 for f in folder.iterdir()), "shipped files stay under 1 MB"
    model, variables = zoo.create_model(model_name, pretrained=dataset, **fast_compile(model_name))
    data = zoo.data.load_dataset(dataset)
    accuracy = zoo.evaluate(model, variables, data.x_test, data.y_test)["accuracy"]
    assert accuracy == pytest.approx(_readme_accuracy(model_name, dataset), abs=2e-4)
    assert accuracy == pytest.approx(pretrained.saved_config(dataset, model_name)["metrics"]["accuracy"], abs=2e-4)


def test_shipped_weights_are_package_data():
    import tomllib

    patterns = tomllib.loads((README.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "zoo"
    ]
    shipped = [p.relative_to(Path(zoo.__file__).parent) for p in pretrained.SHIPPED_DIR.glob("*/*")]
    assert len(shipped) >= 6
    assert all(any(p.match(pattern) for pattern in patterns) for p in shipped)


# --------------------------------------------------------------------------------------
# train.py --save-pretrained DIR / --pretrained SOURCE
# --------------------------------------------------------------------------------------


def test_train_cli_saves_and_starts_from_pretrained_weights(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cli", README.parent / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    base = ["--no-progress", "--epochs", "1", "--set", "hidden_sizes=(8,)", "--seed", "3"]
    assert train.run([*base, "--save-pretrained", str(tmp_path / "a")]) == 0
    saved = pretrained.saved_config(tmp_path / "a")
    assert saved["model"] == "mlp" and saved["dataset"] == "digits" and 0 < saved["metrics"]["accuracy"] <= 1
    assert saved["command"].startswith("python train.py --no-progress --epochs 1")
    _, first = zoo.create_model("mlp", pretrained=tmp_path / "a")
    # A learning rate too small to move the weights: the run ends where it started, the
    # hidden layer from the saved weights, the output layer afresh (--reset-head).
    still = [*base, "--optimizer", "sgd", "--lr", "1e-12", "--pretrained", str(tmp_path / "a"), "--reset-head"]
    assert train.run([*still, "--save-pretrained", str(tmp_path / "b")]) == 0
    assert "pretrained: " in capsys.readouterr().out
    _, second = zoo.create_model("mlp", pretrained=tmp_path / "b")
    np.testing.assert_allclose(second["params"]["hidden_0"]["kernel"], first["params"]["hidden_0"]["kernel"], atol=1e-9)
    assert not np.allclose(second["params"]["out"]["kernel"], first["params"]["out"]["kernel"])
