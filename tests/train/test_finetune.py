"""Fine-tuning (seed kang-lecture4, "Why DNN?": learned knowledge reused in another
domain): frozen parameters stay fixed through training, heads are replaced, and a run
starts from another run's checkpoint through the API and the CLI."""

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import fast_compile

import zoo
from zoo.data import Dataset, load_dataset
from zoo.train import CheckpointError, create_train_state, finetune, fit, get_task
from zoo.train.checkpoint import read_variables
from zoo.train.steps import make_train_step

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _abstract_variables(model):
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *model.input_shape)))


def _flat(tree):
    return {"/".join(str(k.key) for k in kp): np.asarray(v) for kp, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


# --------------------------------------------------------------------------------------
# Heads, freezing, one training step
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, head",
    [
        ("resnet18", {"params/fc/kernel", "params/fc/bias"}),
        ("densenet121", {"params/classifier/kernel", "params/classifier/bias"}),
        ("vgg11", {"params/fc3/kernel", "params/fc3/bias"}),
        ("alexnet_torchvision", {"params/fc3/kernel", "params/fc3/bias"}),
    ],
)
def test_head_paths_are_the_output_layer(name, head):
    model = zoo.create_model(name, **zoo.registry.get_spec(name).test_config)
    assert finetune.head_paths(model) == head


def _tiny_resnet():
    return zoo.create_model(
        "resnet18", input_shape=(16, 16, 3), num_classes=3, stage_sizes=(1, 1), width=4, **fast_compile("resnet18")
    )


def test_freeze_labels_select_by_path_pattern():
    params = _abstract_variables(_tiny_resnet())["params"]

    def trained(labels):
        return sorted(p for p, v in _flat(labels).items() if v == "trainable")

    assert trained(finetune.freeze_labels(params, trainable="fc")) == ["fc/bias", "fc/kernel"]
    # Comma lists, '.' for '/', and patterns that match a leading part of the path.
    assert trained(finetune.freeze_labels(params, trainable="layers_1_0.conv1,fc")) == [
        "fc/bias",
        "fc/kernel",
        "layers_1_0/conv1/kernel",
    ]
    assert trained(finetune.freeze_labels(params, trainable=["*/bn*"])) == [
        "layers_0_0/bn1/bias",
        "layers_0_0/bn1/scale",
        "layers_0_0/bn2/bias",
        "layers_0_0/bn2/scale",
        "layers_1_0/bn1/bias",
        "layers_1_0/bn1/scale",
        "layers_1_0/bn2/bias",
        "layers_1_0/bn2/scale",
    ]
    frozen = finetune.freeze_labels(params, frozen=["conv1", "bn1", "layers_0_*"])
    assert {p.split("/")[0] for p in trained(frozen)} == {"fc", "layers_1_0"}


def test_freeze_errors_are_clear():
    params = _abstract_variables(_tiny_resnet())["params"]
    with pytest.raises(
        ValueError,
        match=r"'layer4\.\*' match no parameter.*top-level modules are: "
        r"bn1, conv1, fc, layers_0_0, layers_1_0",
    ):
        finetune.freeze_labels(params, trainable=["layer4.*", "fc"])
    with pytest.raises(ValueError, match="freezes every parameter"):
        finetune.freeze_labels(params, frozen="*")
    with pytest.raises(ValueError, match="exactly one of trainable= .* or frozen="):
        finetune.freeze(optax.sgd(0.1), trainable="fc", frozen="conv1")
    with pytest.raises(ValueError, match="non-empty path patterns"):
        finetune.freeze(optax.sgd(0.1), trainable="fc,,conv1")
    with pytest.raises(ValueError, match="match no parameter"):  # raised when the optimizer meets the params
        finetune.freeze(optax.sgd(0.1), frozen="nothing_here").init(params)


def test_one_train_step_leaves_frozen_params_bit_identical():
    model = _tiny_resnet()
    # The zoo's AdamW with decoupled weight decay: decay must not reach frozen weights either.
    tx = finetune.freeze(zoo.optim.create("adamw", 1e-2, weight_decay=0.1), trainable=["layers_1_*", "fc"])
    state = create_train_state(model, tx, model.input_shape, seed=0)
    before = _flat(jax.device_get(state.params))
    rng = np.random.default_rng(0)
    batch = {
        "x": rng.normal(size=(8, 16, 16, 3)).astype(np.float32),
        "y": rng.integers(0, 3, size=8).astype(np.int32),
        "mask": np.ones(8, np.float32),
    }
    keep = finetune.frozen_state(state.model_state, trainable=["layers_1_*", "fc"])
    stats_before = _flat(jax.device_get(state.model_state["batch_stats"]))
    state, _ = make_train_step(model, get_task("classification"), tx, keep)(state, batch)
    after = _flat(jax.device_get(state.params))
    # Frozen layers' batch-norm running statistics stay as loaded; trainable ones move.
    stats_after = _flat(jax.device_get(state.model_state["batch_stats"]))
    moved = {p for p in stats_before if not np.array_equal(stats_after[p], stats_before[p])}
    assert moved and moved == {p for p in stats_before if p.startswith("layers_1_")}
    trained = {p for p in before if p.startswith(("layers_1_", "fc/"))}
    assert trained and len(trained) < len(before)
    for path in before:
        if path in trained:
            assert not np.array_equal(after[path], before[path]), path
        else:
            assert after[path].tobytes() == before[path].tobytes(), path  # bit-identical
    # Only the trainable parameters carry Adam moments.
    moments = sum(int(np.prod(np.shape(a))) for a in jax.tree.leaves(state.opt_state))
    assert moments < 2 * sum(before[p].size for p in trained) + 16


def test_replace_head_rejects_variables_of_another_model():
    small = _abstract_variables(_tiny_resnet())
    with pytest.raises(
        ValueError,
        match=r"cannot be loaded into resnet18 with 5 classes: 30 shape "
        r"mismatch\(es\): params/bn1/bias .*params/conv1/kernel "
        r"\(7, 7, 3, 4\) in the given variables, \(7, 7, 3, 8\) in the model",
    ):
        finetune.replace_head("resnet18", small, 5, input_shape=(16, 16, 3), stage_sizes=(1, 1), width=8)
    with pytest.raises(
        ValueError,
        match=r"15 variable\(s\) the model needs are not in the given variables: "
        r"params/layers_2_0/bn1/bias",
    ):
        finetune.replace_head("resnet18", small, 5, input_shape=(16, 16, 3), stage_sizes=(1, 1, 1), width=4)


# --------------------------------------------------------------------------------------
# Fine-tuning from a checkpoint of the training engine (digits: pretrain on 5-9, transfer to 0-4)
# --------------------------------------------------------------------------------------

TINY = {"stage_sizes": (1, 1, 1), "width": 8, **fast_compile("resnet20")}  # CIFAR layout, 1 block/stage
RUN = {"model_overrides": TINY, "validation_fraction": 0.0, "batch_size": 64, "learning_rate": 1e-2, "progress": False}


def _digit_classes(data, classes, name):
    """The digits in ``classes``, relabelled 0 .. len(classes) - 1."""

    def pick(x, y):
        keep = np.isin(y, classes)
        return x[keep], np.searchsorted(classes, y[keep]).astype(np.int32)

    (x_train, y_train), (x_test, y_test) = pick(data.x_train, data.y_train), pick(data.x_test, data.y_test)
    return Dataset(
        name=name,
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(classes),
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A run of the engine on digits 5-9 (5 classes), with its checkpoints."""
    workdir = str(tmp_path_factory.mktemp("transfer") / "pretrain")
    result = fit(
        "resnet20",
        _digit_classes(load_dataset("digits"), [5, 6, 7, 8, 9], "digits_5_9"),
        epochs=3,
        workdir=workdir,
        **RUN,
    )
    assert result.test_metrics["accuracy"] > 0.85  # 0.92 observed
    return workdir


def test_fine_tune_new_head_from_checkpoint(pretrained):
    digits_0_4 = _digit_classes(load_dataset("digits"), [0, 1, 2, 3, 4], "digits_0_4")
    result = fit(
        "resnet20",
        digits_0_4,
        epochs=4,
        init_from=pretrained,
        reset_head=True,
        trainable="fc",
        **{**RUN, "learning_rate": 5e-2},
    )
    loaded = read_variables(pretrained)[0]
    # The backbone's batch-norm statistics are frozen with it (evaluation uses them).
    for path, value in _flat(loaded["batch_stats"]).items():
        np.testing.assert_array_equal(_flat(jax.device_get(result.state.model_state["batch_stats"]))[path], value)
    saved = _flat(loaded["params"])
    tuned = _flat(jax.device_get(result.state.params))
    assert set(saved) == set(tuned)
    for path, value in saved.items():
        if path.startswith("fc/"):
            assert not np.array_equal(tuned[path], value)
        else:
            np.testing.assert_array_equal(tuned[path], value)  # the frozen backbone, bit for bit
    # Features learned on 5-9 separate 0-4 well enough for a linear head (chance: 0.2;
    # 0.87 observed, and 0.77 with the same head on a frozen random backbone).
    assert result.test_metrics["accuracy"] > 0.6
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_init_from_checkpoint_resets_or_keeps_the_head(pretrained):
    model = zoo.create_model("resnet20", input_shape=(8, 8, 1), num_classes=5, **TINY)
    fresh = jax.device_get(zoo.train.state.init_variables(model, model.input_shape, jax.random.PRNGKey(7)))
    saved = _flat(read_variables(os.path.join(pretrained, "checkpoints"))[0])
    kept = _flat(finetune.init_from_checkpoint(model, fresh, pretrained))
    reset = _flat(finetune.init_from_checkpoint(model, fresh, pretrained, reset_head=True))
    assert set(kept) == set(saved) == set(_flat(fresh))
    for path in saved:
        np.testing.assert_array_equal(kept[path], saved[path])
        np.testing.assert_array_equal(reset[path], _flat(fresh)[path] if path.startswith("params/fc/") else saved[path])
    # Ten classes: the head cannot come from a 5-class checkpoint, so it stays as initialised.
    wide = model.clone(num_classes=10)
    fresh10 = zoo.train.state.init_variables(wide, wide.input_shape, jax.random.PRNGKey(7))
    ten = _flat(finetune.init_from_checkpoint(wide, fresh10, pretrained))
    np.testing.assert_array_equal(ten["params/fc/kernel"], np.asarray(fresh10["params"]["fc"]["kernel"]))
    np.testing.assert_array_equal(ten["params/conv1/kernel"], saved["params/conv1/kernel"])


def test_init_from_missing_corrupt_or_foreign_checkpoint(pretrained, tmp_path):
    digits = load_dataset("digits")
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match=r"no_such_run does not exist \(expected a work dir"):
        fit("resnet20", digits, epochs=1, init_from=str(tmp_path / "no_such_run"), workdir=str(run), **RUN)
    assert not run.exists()  # nothing half-made left behind
    with pytest.raises(ValueError, match=r"'layer4\.\*' match no parameter.*top-level modules are: bn1, conv1, fc"):
        fit("resnet20", digits, epochs=1, init_from=pretrained, trainable="layer4.*,fc", workdir=str(run), **RUN)
    assert not run.exists()
    with pytest.raises(CheckpointError, match="holds no checkpoints"):
        read_variables(str(tmp_path))
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoints/3 cannot be loaded into ResNet.*shape mismatch"):
        fit("resnet20", digits, epochs=1, init_from=pretrained, **{**RUN, "model_overrides": {**TINY, "width": 4}})
    corrupt = tmp_path / "corrupt"
    shutil.copytree(pretrained, corrupt)
    for root, _, files in os.walk(corrupt / "checkpoints" / "3"):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"garbage")
    with pytest.raises(CheckpointError, match=r"checkpoints/3 cannot be read .*left untouched"):
        read_variables(str(corrupt))
    assert sorted(os.listdir(corrupt / "checkpoints")) == sorted(os.listdir(os.path.join(pretrained, "checkpoints")))


def test_train_cli_fine_tunes_from_a_checkpoint(pretrained, tmp_path):
    """10-class digits from the 5-class run: the head is re-initialised (its size differs),
    the stem and first stage stay frozen."""
    common = [
        sys.executable,
        "train.py",
        "--model",
        "resnet20",
        "--set",
        "stage_sizes=(1,1,1)",
        "--set",
        "width=8",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--lr",
        "0.01",
        "--validation-fraction",
        "0",
        "--no-progress",
        *[f"--set={k}={v}" for k, v in fast_compile("resnet20").items()],
    ]
    run = tmp_path / "fine"
    proc = subprocess.run(
        [*common, "--init-from", pretrained, "--freeze", "conv1,bn1,layers_0_*", "--workdir", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(line.startswith("test:") and "accuracy=" in line for line in proc.stdout.splitlines())
    saved = _flat(read_variables(pretrained)[0]["params"])
    tuned = _flat(read_variables(str(run))[0]["params"])
    assert tuned["fc/kernel"].shape == (32, 10) and saved["fc/kernel"].shape == (32, 5)
    for path in saved:
        if path.startswith(("conv1/", "bn1/", "layers_0_")):
            np.testing.assert_array_equal(tuned[path], saved[path])
        elif not path.startswith("fc/"):
            assert not np.array_equal(tuned[path], saved[path]), path
    # A user error: one line, exit status 2, no work dir made.
    proc = subprocess.run(
        [*common, "--init-from", str(tmp_path / "missing"), "--workdir", str(tmp_path / "bad")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error:"), proc.stderr
    assert "missing does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_train_cli_help_documents_fine_tuning_options():
    proc = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0
    for option in ("--init-from", "--freeze", "--trainable", "--reset-head", "WORKDIR_OR_CKPT"):
        assert option in proc.stdout
