"""Work dirs: config, metrics log and checkpoints; resume (bit-identical, for every schedule),
fallback past unreadable checkpoints, the metrics log agreeing with the checkpoints, one
writer per work dir, and Ctrl-C saving at a step boundary."""

import json
import os
import signal
import subprocess
import sys
import time

import chex
import pytest

from zoo.train import CheckpointError, fit
from zoo.train.checkpoint import workdir_lock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = dict(progress=False)


def _epochs_logged(workdir):
    """The epoch of each epoch line, None for the test line (per-step lines left out)."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r.get("epoch") for r in map(json.loads, f) if r.get("event") != "step"]


def test_workdir_metrics_and_config(tmp_path):
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), **QUIET)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines if "event" not in l] == [1, 2] and lines[-1]["event"] == "test"
    assert [l["step"] for l in lines if l.get("event") == "step"] == list(range(1, 2 * 41 + 1))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "mlp" and config["epochs"] == 2 and config["dataset"] == "digits"
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


def test_resume_gives_identical_parameters(tmp_path):
    """Dropout, batch norm and Adam state all survive the checkpoint: 2 + 2 epochs == 4."""
    kwargs = dict(epochs=4, batch_size=64, model_overrides={"hidden_sizes": (32, 32)}, **QUIET)
    full = fit("dff", "digits", workdir=str(tmp_path / "full"), **kwargs)
    fit("dff", "digits", workdir=str(tmp_path / "split"), **{**kwargs, "epochs": 2})
    resumed = fit("dff", "digits", workdir=str(tmp_path / "split"), resume=True, **kwargs)
    chex.assert_trees_all_equal(resumed.state.params, full.state.params)
    chex.assert_trees_all_equal(resumed.state.model_state, full.state.model_state)
    assert int(resumed.state.step) == int(full.state.step)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]


def test_existing_workdir_needs_resume_and_same_config(tmp_path):
    fit("mlp", "digits", epochs=1, workdir=str(tmp_path), **QUIET)
    with pytest.raises(CheckpointError, match="already holds a run"):
        fit("mlp", "digits", epochs=1, workdir=str(tmp_path), **QUIET)
    with pytest.raises(CheckpointError, match="learning_rate"):
        fit("mlp", "digits", epochs=2, learning_rate=0.5, workdir=str(tmp_path), resume=True, **QUIET)
    assert os.listdir(tmp_path / "checkpoints") == ["1"]  # nothing lost


def _corrupt(checkpoint):
    for root, _, files in os.walk(checkpoint):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"garbage")


def test_unreadable_checkpoints_give_one_line_and_are_kept(tmp_path):
    fit("mlp", "digits", epochs=1, workdir=str(tmp_path), **QUIET)
    ckpt = tmp_path / "checkpoints" / "1"
    _corrupt(ckpt)
    with pytest.raises(
        CheckpointError, match=r"can be restored.*left untouched.*checkpoints/1 cannot be restored"
    ) as e:
        fit("mlp", "digits", epochs=2, workdir=str(tmp_path), resume=True, **QUIET)
    assert "\n" not in str(e.value) and len(str(e.value)) < 600
    assert ckpt.exists()


def test_resume_falls_back_past_an_unreadable_checkpoint(tmp_path, caplog):
    kwargs = dict(epochs=4, model_overrides={"hidden_sizes": (16,)}, **QUIET)
    full = fit("mlp", "digits", **kwargs)
    fit("mlp", "digits", workdir=str(tmp_path), **{**kwargs, "epochs": 3})
    _corrupt(tmp_path / "checkpoints" / "3")
    resumed = fit("mlp", "digits", workdir=str(tmp_path), resume=True, **kwargs)
    assert "skipped checkpoint of epoch 3" in caplog.text
    assert (tmp_path / "unreadable" / "3").is_dir()  # moved aside, not deleted or overwritten
    chex.assert_trees_all_equal(resumed.state.params, full.state.params)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert _epochs_logged(tmp_path) == [1, 2, 3, 4, None]  # None: the test line


def test_checkpoint_meta_without_its_keys_is_skipped(tmp_path, caplog):
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), **QUIET)
    meta = tmp_path / "checkpoints" / "2" / "meta" / "metadata"
    meta.write_text("{}")
    resumed = fit("mlp", "digits", epochs=2, workdir=str(tmp_path), resume=True, **QUIET)
    assert "no epoch, early_stopping, stopped in its meta" in caplog.text
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_metrics_log_agrees_with_checkpoints_after_a_kill(tmp_path):
    """A kill after an epoch's line is logged but before its checkpoint lands leaves a line
    the checkpoints lack (here: written by hand); resume cuts it and logs each epoch once."""
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), **QUIET)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 3, "train_loss": 0.0}) + "\n" + '{"epoch": 4, "trai')
    fit("mlp", "digits", epochs=4, workdir=str(tmp_path), resume=True, **QUIET)
    assert _epochs_logged(tmp_path) == [1, 2, 3, 4, None]


def test_checkpoints_do_not_hold_the_history(tmp_path):
    fit("mlp", "digits", epochs=3, workdir=str(tmp_path), **QUIET)
    sizes = [os.path.getsize(tmp_path / "checkpoints" / str(e) / "meta" / "metadata") for e in (1, 3)]
    assert sizes[0] == sizes[1]  # the meta does not grow with the epochs


@pytest.mark.parametrize(
    "schedule, kwargs",
    [
        ("constant", {}),
        ("step", {"step_size": 30}),
        ("warmup", {"warmup_steps": 40}),
        ("cosine", {"decay_steps": 500}),
        ("warmup_cosine", {"warmup_steps": 20, "decay_steps": 500}),
    ],
)
def test_resume_equals_one_run_for_every_schedule(tmp_path, schedule, kwargs):
    run = dict(
        model_overrides={"hidden_sizes": (16,)},
        batch_size=64,
        optimizer="sgd",
        learning_rate=0.1,
        optimizer_kwargs={"schedule": schedule, "schedule_kwargs": kwargs},
        **QUIET,
    )
    full = fit("mlp", "digits", epochs=4, **run)
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), **run)
    resumed = fit("mlp", "digits", epochs=4, workdir=str(tmp_path), resume=True, **run)
    chex.assert_trees_all_equal(resumed.state.params, full.state.params)


@pytest.mark.parametrize("schedule", ["cosine", "warmup_cosine"])
def test_resume_refuses_a_schedule_whose_length_followed_the_epochs(tmp_path, schedule):
    run = dict(
        model_overrides={"hidden_sizes": (16,)},
        optimizer_kwargs={
            "schedule": schedule,
            "schedule_kwargs": {"warmup_steps": 5} if schedule == "warmup_cosine" else {},
        },
        **QUIET,
    )
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), **run)
    with pytest.raises(CheckpointError, match=r"schedule_length \(saved 82, now 164\).*decay_steps"):
        fit("mlp", "digits", epochs=4, workdir=str(tmp_path), resume=True, **run)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), resume=True, **run)  # same length: fine


def test_one_writer_per_workdir(tmp_path):
    fit("mlp", "digits", epochs=1, workdir=str(tmp_path), **QUIET)
    before = (tmp_path / "metrics.jsonl").read_text()
    with workdir_lock(str(tmp_path)):
        with pytest.raises(CheckpointError, match=r"in use by another run \(pid \d+\)"):
            fit("mlp", "digits", epochs=2, workdir=str(tmp_path), resume=True, **QUIET)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    fit("mlp", "digits", epochs=2, workdir=str(tmp_path), resume=True, **QUIET)  # released


@pytest.mark.parametrize("workdir", ["file", "file/run"])
def test_unusable_workdir_is_one_clear_error(tmp_path, workdir):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(CheckpointError, match=r"cannot use work dir .*(File exists|Not a directory)"):
        fit("mlp", "digits", epochs=1, workdir=str(tmp_path / workdir), **QUIET)
    assert (tmp_path / "file").read_text() == "a file, not a folder"


def test_ctrl_c_saves_at_a_step_boundary_and_resume_finishes_the_same_run(tmp_path):
    run = tmp_path / "run"
    args = [
        sys.executable,
        "train.py",
        "--no-progress",
        "--epochs",
        "3",
        "--batch-size",
        "1",
        "--set",
        "hidden_sizes=(16,)",
        "--validation-fraction",
        "0",
        "--workdir",
        str(run),
    ]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = run / "metrics.jsonl", time.time() + 240
    # Interrupt early in epoch 2 (epoch 1's line is logged): 1,797 steps per epoch at batch 1.
    while (
        time.time() < deadline
        and proc.poll() is None
        and not (metrics.exists() and metrics.read_text().count("\n") >= 1)
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: checkpoint saved after step" in err and "(epoch 2, batch" in err and "--resume" in err
    assert "Traceback" not in err
    assert _epochs_logged(run) == [1]
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = subprocess.run(args[:-1] + [str(tmp_path / "full")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    test_line = lambda p: [line for line in p.stdout.splitlines() if line.startswith("test:")][0]
    assert test_line(resumed) == test_line(full)
    assert _epochs_logged(run) == [1, 2, 3, None]
    with open(run / "metrics.jsonl") as f, open(tmp_path / "full" / "metrics.jsonl") as g:
        timings = ("epoch_seconds", "examples_per_second")
        drop_time = lambda line: {k: v for k, v in json.loads(line).items() if k not in timings}
        assert [drop_time(a) for a in f] == [drop_time(b) for b in g]  # same losses, epoch by epoch


def test_read_variables_checks_the_saved_layout_before_allocating(tmp_path):
    import jax

    from zoo.train.checkpoint import read_variables

    fit("mlp", "digits", epochs=1, workdir=str(tmp_path), model_overrides={"hidden_sizes": (8,)}, **QUIET)
    seen = []

    def refuse(layout, where):
        seen.append((jax.tree.leaves(layout), where))
        raise ValueError("does not fit")

    with pytest.raises(ValueError, match="does not fit"):
        read_variables(str(tmp_path), check=refuse)
    leaves, where = seen[0]
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)  # shapes, no arrays
    assert where.endswith("checkpoints/1")


def test_a_read_only_file_system_is_one_clear_error(tmp_path, monkeypatch):
    """Root ignores permission bits, so the file system's answer is simulated: EROFS from
    creating the work dir."""
    import errno

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(CheckpointError, match="cannot use work dir .*Read-only file system"):
        fit("mlp", "digits", epochs=1, workdir=str(tmp_path / "run"), **QUIET)
