"""The practical-techniques studies (kang-lecture4 part 05): zoo.studies and the scripts
that print their tables (their --quick form)."""

import os
import runpy

import jax
import numpy as np

from test_scripts import ROOT, run_script
from zoo import optim
from zoo.data.synthetic import circles
from zoo.studies import init_study, mlp_params, train_mlp


def test_seed_zero_init_stays_at_log2_and_half_accuracy():
    """kang-lecture4 "Weight Initialization", Strategy I: loss 0.693, accuracy 50%. By
    symmetry every hidden kernel gradient is exactly 0, so the net only learns the output
    bias, and the classes are balanced: the loss stays at log 2."""
    out = init_study(circles(), {"zero": ("zeros", None)}, seeds=2, steps=50)
    np.testing.assert_allclose(out["final_loss"], np.log(2.0), rtol=1e-6)
    np.testing.assert_array_equal(out["train_accuracy"], 0.5)
    np.testing.assert_array_equal(out["test_accuracy"], 0.5)
    np.testing.assert_array_equal(out["grad_mean"][..., :2], 0.0)


def test_he_init_beats_large_random_init():
    """kang-lecture4 "Weight Initialization": He (0.074 / 96%) beats N(0, large) (0.383 /
    86%). A shorter run at a larger step size (1,000 steps, lr 0.1, 3 seeds)."""
    out = init_study(
        circles(), {"random": ("normal", 10.0), "he": ("he_normal", None)}, seeds=3, steps=1000, learning_rate=0.1
    )
    loss, accuracy = np.asarray(out["final_loss"]).mean(1), np.asarray(out["train_accuracy"]).mean(1)
    assert loss[1] < loss[0] and accuracy[1] > accuracy[0] + 0.05


def test_train_mlp_minibatch_matches_shapes_and_learns():
    data = circles()
    params = mlp_params(jax.random.PRNGKey(1), (2, 8, 1), "he_normal")
    out = train_mlp(
        params,
        data.x_train,
        data.y_train,
        tx=optim.create("adam", 0.05),
        steps=200,
        batch_size=32,
        key=jax.random.PRNGKey(0),
    )
    assert out["loss"].shape == (200,) and out["grad_mean"].shape == (200, 2)
    assert out["final_loss"] < 0.5 * out["loss"][0]


def test_init_study_script_quick(capsys, tmp_path):
    out = run_script("init_study.py", ["--quick", "--plots", str(tmp_path)], capsys)
    assert "| zero | 0.693 ± 0.000 | 50.0% | 50.0% | 0.693 / 50% |" in out
    assert "one jit'd call, compilation included" in out
    assert sorted(os.listdir(tmp_path)) == ["init_gradients.png", "init_loss.png"]


def test_optimizer_study_script_quick(capsys, tmp_path):
    out = run_script("optimizer_study.py", ["--quick", "--plots", str(tmp_path)], capsys)
    assert "### Optimizers on two circles" in out and "### Optimizers on Rosenbrock" in out
    assert "| Adam | `adam` | 0.01 | all |" in out
    assert sorted(os.listdir(tmp_path)) == ["optimizer_loss.png", "optimizer_rosenbrock.png"]


def test_trajectory_of_gradient_descent_is_the_hand_iteration():
    """trajectory: w_{t+1} = w_t - eta grad f(w_t), starting point included."""
    from zoo.studies import rosenbrock, trajectory

    path = trajectory(rosenbrock, (-1.2, 1.0), optim.create("gd", 1e-3), 3)
    w = np.array([-1.2, 1.0])
    expected = [w]
    for _ in range(3):
        a, b = w
        w = w - 1e-3 * np.array([-2 * (1 - a) - 400 * a * (b - a**2), 200 * (b - a**2)])
        expected.append(w)
    np.testing.assert_allclose(path, np.stack(expected), rtol=1e-5)


def test_batchnorm_study_counts_steps_to_the_baselines_best(capsys):
    study = runpy.run_path(os.path.join(ROOT, "scripts", "batchnorm_study.py"))  # its functions, not its main
    steps_to, table = study["steps_to"], study["table"]
    history = lambda *accuracies: [{"step": 10 * (i + 1), "val_accuracy": a} for i, a in enumerate(accuracies)]  # noqa: E731
    assert steps_to(history(0.2, 0.5, 0.7), 0.5) == 20 and steps_to(history(0.2, 0.4), 0.5) is None
    text = table({"baseline (no BN)": [history(0.3, 0.5), history(0.4, 0.7)], "BN-x5": [history(0.6, 0.9)] * 2})
    assert "the baseline's best, 0.6000" in text
    assert "| baseline (no BN) | —, 20 | 20 (1/2) | 0.6000 ± 0.1000 |" in text
    assert "| BN-x5 | 10, 10 | 10 (2/2) | 0.9000 ± 0.0000 |" in text
    out = run_script("batchnorm_study.py", ["--quick"], capsys)
    assert "| BN-x5 |" in out and "2 rows x 1 seeds x 1 epochs (41 steps each)" in out


def test_vanishing_gradients_shrink_toward_the_input_only_for_plain_sigmoid(capsys):
    norms = runpy.run_path(os.path.join(ROOT, "scripts", "vanishing_gradients.py"))["main"]()
    shrink = {label: n["hidden_0"] / n["hidden_11"] for label, n in norms.items()}
    # Each sigmoid layer multiplies the backward signal by at most 1/4 (its top slope).
    assert shrink["sigmoid"] < 1e-5 and shrink["ReLU + He"] > 0.1 and shrink["sigmoid + batch norm"] > 0.1
    out = capsys.readouterr().out
    assert "| sigmoid | 1.8e-08 |" in out and "first / last hidden" in out
