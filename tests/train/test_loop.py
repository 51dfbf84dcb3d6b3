"""The training loop on tiny data: early stopping, non-finite losses, rule-based models, data
parallelism, the CLI and import cost (work dirs and resume: test_checkpoint.py)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zoo.data import Dataset, load_dataset
from zoo.train import NonFiniteLossError, evaluate, fit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = dict(progress=False)


def _run(code: str, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_fit_mlp_on_digits_short_run():
    """Short version of the README's default job (python train.py: 50 epochs, >= 97%)."""
    result = fit("mlp", load_dataset("digits"), epochs=4, **QUIET)
    assert result.test_metrics["accuracy"] > 0.9
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(result.history[0])


def test_fit_regression_on_diabetes():
    """The dataset's task decides: an MLP with one output fits the diabetes targets."""
    data = load_dataset("diabetes")
    result = fit(
        "mlp", data, epochs=30, batch_size=32, learning_rate=1e-2, model_overrides={"hidden_sizes": (16,)}, **QUIET
    )
    assert result.task.name == "regression"
    assert result.test_metrics["mse"] < 0.7  # standardised targets: 1.0 = predicting the mean


def test_evaluate_matches_fit_report():
    data = load_dataset("digits")
    result = fit("mlp", data, epochs=1, **QUIET)
    again = evaluate(result.model, result.variables, data.x_test, data.y_test, batch_size=100)
    assert again["accuracy"] == pytest.approx(result.test_metrics["accuracy"], abs=1e-6)
    assert again["loss"] == pytest.approx(result.test_metrics["loss"], rel=1e-5)


def test_non_finite_loss_stops_with_the_step():
    """Finite data and a learning rate that blows the weights up: the loss overflows."""
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite training loss .* at step \d+ \(epoch 1, batch \d+\).*learning rate"
    ):
        fit("mlp", "digits", epochs=2, optimizer="sgd", learning_rate=1e30, validation_fraction=0.0, **QUIET)


def test_early_stopping_target_and_patience():
    data = load_dataset("digits")
    hit = fit("mlp", data, epochs=20, target=0.5, **QUIET)
    assert len(hit.history) == 1 and "reached the target" in hit.stop_reason
    # A learning rate of 1e-12 never improves: patience 2 stops after epoch 3.
    flat = fit("mlp", data, epochs=20, patience=2, learning_rate=1e-12, optimizer="sgd", **QUIET)
    assert len(flat.history) == 3 and "no improvement" in flat.stop_reason
    still = fit("mlp", data, epochs=20, min_weight_change=1e-9, learning_rate=1e-12, optimizer="sgd", **QUIET)
    assert len(still.history) == 1 and "weights changed" in still.stop_reason


def test_full_batch_and_stochastic_gradient_descent():
    """Batch size decides: >= N gives one step per epoch (full batch), 1 gives N steps."""
    data = load_dataset("xor")
    full = fit(
        "mlp",
        data,
        epochs=3,
        batch_size=10_000,
        optimizer="gd",
        validation_fraction=0.0,
        model_overrides={"hidden_sizes": (4,)},
        **QUIET,
    )
    assert int(full.state.step) == 3
    sgd = fit(
        "mlp",
        data,
        epochs=2,
        batch_size=1,
        optimizer="sgd",
        validation_fraction=0.0,
        model_overrides={"hidden_sizes": (4,)},
        **QUIET,
    )
    assert int(sgd.state.step) == 2 * len(data.x_train)


def test_fit_rosenblatt_perceptron_by_its_rule():
    """Non-gradient models train through the same loop with their learning rule."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 4, np.float32)
    y = np.array([0, 1, 1, 1] * 4, np.int32)  # OR: linearly separable
    data = Dataset(name="or", task="classification", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], num_classes=2)
    result = fit("perceptron_rosenblatt", data, epochs=10, batch_size=4, validation_fraction=0.0, **QUIET)
    assert result.task.name == "binary_classification"
    assert result.test_metrics["accuracy"] == 1.0


def test_fit_sigmoid_perceptron_by_gradient():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, np.float32)
    y = np.array([0, 0, 0, 1] * 8, np.int32)  # AND
    data = Dataset(name="and", task="classification", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], num_classes=2)
    result = fit(
        "perceptron",
        data,
        epochs=200,
        batch_size=32,
        optimizer="sgd",
        learning_rate=2.0,
        validation_fraction=0.0,
        **QUIET,
    )
    assert result.test_metrics["accuracy"] == 1.0


def test_hand_wired_model_cannot_be_fitted():
    with pytest.raises(ValueError, match="hand-wired"):
        fit("xor_sigmoid_net", "xor", epochs=1, **QUIET)


def test_bad_train_config_errors():
    with pytest.raises(ValueError, match="epochs must be positive"):
        fit("mlp", "digits", epochs=0, **QUIET)
    with pytest.raises(ValueError, match="unknown model"):
        fit("mlpx", "digits", epochs=1, **QUIET)
    with pytest.raises(ValueError, match="takes no kernel_init"):
        fit("xor_sign_net", "xor", init="he_normal", **QUIET)


def test_two_devices_equal_one_device():
    """Data parallel over 2 forced host devices gives the 1-device result within 1e-5."""
    proc = _run(
        """
        import jax, numpy as np, zoo
        assert len(jax.devices()) == 2, jax.devices()
        kw = dict(epochs=2, batch_size=64, drop_remainder=True, progress=False,
                  model_overrides={"hidden_sizes": (32, 32), "dropout_rate": 0.2})
        one = zoo.fit("dff", "digits", num_devices=1, **kw)
        two = zoo.fit("dff", "digits", num_devices=2, **kw)
        leaves = lambda r: jax.tree.leaves((r.state.params, r.state.model_state))
        diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                   for a, b in zip(leaves(one), leaves(two)))
        sharding = jax.tree.leaves(two.state.params)[0].sharding
        print("DIFF", diff, len(sharding.device_set))
    """,
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, diff, ndev = proc.stdout.split()[-3:]
    assert int(ndev) == 2
    assert float(diff) <= 1e-5


def test_train_cli_runs_and_reports_test_accuracy(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--epochs",
            "2",
            "--no-progress",
            "--set",
            "hidden_sizes=(32,)",
            "--workdir",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    test_line = [l for l in proc.stdout.splitlines() if l.startswith("test:")]
    assert test_line and "accuracy=" in test_line[0] and "loss=" in test_line[0]
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_train_cli_help_lists_models_and_datasets():
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for name in ("mlp", "perceptron_rosenblatt", "rbf", "digits", "fashion_mnist", "adam"):
        assert name in proc.stdout


def test_train_cli_user_errors_are_one_clear_line():
    for args, message in (
        (["--model", "mlpp"], "Did you mean: mlp"),
        (["--dataset", "digitz"], "digits"),
        (["--set", "hidden=3"], "unknown config key"),
    ):
        proc = subprocess.run(
            [sys.executable, "train.py", "--no-progress", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.startswith("error:") and message in proc.stderr
        assert "Traceback" not in proc.stderr


def test_import_needs_no_tensorflow_orbax_or_torch():
    proc = _run("""
        import sys
        import zoo
        zoo.list_models()
        heavy = [m for m in ("tensorflow", "tensorflow_datasets", "orbax.checkpoint", "torch")
                 if m in sys.modules]
        print("HEAVY", heavy)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("HEAVY")[-1].strip() == "[]", proc.stdout
