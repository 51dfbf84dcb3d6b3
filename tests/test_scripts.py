"""The experiment scripts in scripts/ run (their --quick form) and print their tables."""

import os
import runpy
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, argv, capsys):
    path = os.path.join(ROOT, "scripts", name)
    old = sys.argv
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr().out


def test_autoencoder_experiments_quick(capsys):
    out = run_script("autoencoder_experiments.py", ["--quick"], capsys)
    for title in ("Denoising", "VAE", "Layer-wise pretraining", "features for a classifier", "Novelty detection"):
        assert f"### {title}" in out or title in out
    assert out.count("|---|") >= 5


def test_roc_auc_is_mann_whitney():
    ns = runpy.run_path(os.path.join(ROOT, "scripts", "autoencoder_experiments.py"))
    import numpy as np

    assert ns["roc_auc"](np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert ns["roc_auc"](np.array([1.0]), np.array([1.0])) == 0.5
    assert ns["roc_auc"](np.array([0.0, 2.0]), np.array([1.0])) == pytest.approx(0.5)


def test_hal_experiments_quick(capsys, tmp_path):
    plot = tmp_path / "hal.png"
    out = run_script(
        "hal_experiments.py", ["--cases", "case1", "--seeds", "2", "--epochs", "1", "--plot", str(plot)], capsys
    )
    assert "| digits | baseline | case1 |" in out and "paired t-test" in out
    assert plot.stat().st_size > 1000


def test_energy_experiments_fast_parts(capsys):
    """The capacity and digit-recall tables (the RBM, DBN and timing parts take minutes)."""
    out = run_script("energy_experiments.py", ["capacity", "hopfield"], capsys)
    assert "| P / N | N = 100 |" in out and "Hamming recall" in out
    with pytest.raises(SystemExit, match="unknown experiment"):
        run_script("energy_experiments.py", ["nope"], capsys)


def test_energy_capacity_plot(capsys, tmp_path):
    plot = tmp_path / "capacity.png"
    out = run_script("energy_experiments.py", ["--plot", str(plot), "--max-n", "100"], capsys)
    assert "wrote" in out and plot.stat().st_size > 1000
    ns = runpy.run_path(os.path.join(ROOT, "scripts", "energy_experiments.py"))
    exact, wrong = ns["capacity_curve"](100, [0.05, 0.3], seeds=1)
    assert exact[0] == 1.0 and wrong[0] == 0.0 and exact[1] < 0.5 and wrong[1] > 0.05


def test_localisation_experiment_quick(capsys):
    out = run_script("localisation_experiment.py", ["--quick"], capsys)
    assert "| wifi_fingerprints, 120 / 60, 1 seeds | building accuracy | floor accuracy |" in out
    assert "| multi-label (paper) |" in out and "| hierarchical |" in out


def test_vqa_experiment_quick(capsys):
    out = run_script("vqa_experiment.py", ["--quick"], capsys)
    for row in ("| question only (LSTM) |", "| BOW + CNN |", "| LSTM + CNN |", "| chance without the image"):
        assert row in out
    assert "| colour | shape | count | exists | size | left_of |" in out


def test_caption_experiment_quick(capsys):
    out = run_script("caption_experiment.py", ["--quick", "--beam-size", "2"], capsys)
    assert out.count("| greedy |") == 2 and out.count("| beam 2 |") == 2
