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
