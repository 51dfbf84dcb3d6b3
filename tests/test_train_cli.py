"""train.py as a hostile but fair user meets it: every bad option, value or data is one
``error:`` line naming the problem, exit code 2, no traceback; nothing saved changes."""

import importlib.util
import json
import re
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

PROBES = [
    (["--model", "perceptron"], "one output unit for two classes"),
    (["--lr", "-0.1"], "learning rate must be a positive finite number, got -0.1"),
    (["--lr", "0"], "learning rate must be a positive finite number, got 0"),
    (["--opt", "beta1=1.5"], r"beta1 must be a number in \[0, 1\), got 1.5"),
    (["--opt", "beta1=abc"], "beta1 must be a number in .* got 'abc'"),
    (["--opt", "eps=-1"], "eps must be a number > 0"),
    (["--optimizer", "momentum", "--opt", "momentum=-5"], r"momentum must be a number in \[0, 1\)"),
    (["--optimizer", "momentum", "--opt", "momentum=abc"], "momentum must be a number"),
    (["--schedule", "cosine", "--opt", "schedule_kwargs={'alpha':'x'}"], "alpha must be a finite number"),
    (["--num-devices", "0"], "num_devices .* got 0"),
    (["--num-devices", "5"], "num_devices .* got 5"),
    (["--num-devices", "-1"], "num_devices .* got -1"),
    (["--model", "lenet5"], r"cannot run on dataset 'digits'.*--data image_size=28"),
    (["--model", "xor_sign_net"], "hand-wired weights"),
    (["--set", "hidden_sizes=abc"], "hidden_sizes must be a tuple like"),
    (["--set", "hidden_sizes=64"], "hidden_sizes must be a tuple like"),
    (["--set", "hidden_sizes=(64.5,)"], r"hidden_sizes\[0\] must be an integer, got float 64.5"),
    (["--set", "batch_norm=maybe"], "batch_norm must be True or False"),
    (["--set", "hidden=3"], "unknown config key 'hidden'"),
    (["--model", "mlpp"], "Did you mean: mlp"),
    (["--dataset", "digitz"], "digits"),
    (["--data", "image_size=100000"], "choose a smaller image size"),
    (["--resume"], "needs a workdir"),
]


@pytest.mark.parametrize("args, message", PROBES, ids=[" ".join(a) for a, _ in PROBES])
def test_user_error_is_one_line_and_exit_code_2(args, message, capsys):
    code = train.run(["--no-progress", "--epochs", "1", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("make_workdir", ["file", "in_use", "corrupt_config"])
def test_workdir_errors_leave_what_was_saved(tmp_path, make_workdir, capsys):
    from zoo.train.checkpoint import workdir_lock

    run = tmp_path / "run"
    if make_workdir == "file":
        run.write_text("mine")
    else:
        assert train.run(["--no-progress", "--epochs", "1", "--set", "hidden_sizes=(8,)", "--workdir", str(run)]) == 0
        if make_workdir == "corrupt_config":
            (run / "config.json").write_text("{not json")
    before = {p: p.read_bytes() for p in ([run] if run.is_file() else run.rglob("*")) if p.is_file()}
    capsys.readouterr()
    args = ["--no-progress", "--epochs", "2", "--set", "hidden_sizes=(8,)", "--workdir", str(run), "--resume"]
    if make_workdir == "in_use":
        with workdir_lock(str(run)):
            code = train.run(args)
    else:
        code = train.run(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    after = {p: p.read_bytes() for p in before}
    changed = [str(p) for p in before if after[p] != before[p] and p.name != ".lock"]
    assert changed == [], changed


def test_init_from_an_unreadable_checkpoint_is_one_line(tmp_path, capsys):
    source = tmp_path / "source"
    assert train.run(["--no-progress", "--epochs", "1", "--set", "hidden_sizes=(8,)", "--workdir", str(source)]) == 0
    for path in (source / "checkpoints" / "1").rglob("*"):
        if path.is_file():
            path.write_text("garbage")
    capsys.readouterr()
    code = train.run(["--no-progress", "--epochs", "1", "--set", "hidden_sizes=(8,)", "--init-from", str(source)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: checkpoint") and "cannot be read" in err[0] and "left untouched" in err[0]


def test_disk_full_during_a_save_is_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    """A failing checkpoint write (ENOSPC from the file system) stops the run with one line;
    the earlier checkpoint stays, and a later resume cuts the log back and finishes."""
    import errno

    from zoo.train.checkpoint import Checkpointer

    run = tmp_path / "run"
    args = ["--no-progress", "--set", "hidden_sizes=(8,)", "--workdir", str(run)]
    assert train.run([*args, "--epochs", "1"]) == 0
    capsys.readouterr()

    def full_disk(self, epoch, state, meta):
        raise OSError(errno.ENOSPC, "No space left on device", str(run / "checkpoints" / str(epoch)))

    with monkeypatch.context() as patch:
        patch.setattr(Checkpointer, "save", full_disk)
        code = train.run([*args, "--epochs", "2", "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: No space left on device"), err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1"]
    assert train.run([*args, "--epochs", "2", "--resume"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "event" not in r] == [1, 2]
