"""Multi-process data parallelism: two processes on this machine, coordinated over
loopback by ``jax.distributed`` with CPU (gloo) collectives, train like one process on
the same global batches; and the device / process options are checked."""

import os
import re
import socket
import subprocess
import sys
import time
import types

import chex
import jax
import pytest

from conftest import require_module
from zoo.train import fit
from zoo.train.checkpoint import read_variables
from zoo.train.sharding import check_process_args, initialize_distributed, select_devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Small but not trivial: dropout draws and batch-norm statistics both cross the split.
# 12% held out leaves 1264 training examples: 19 batches of 64 and one of 48, so no batch is
# padded for 4 devices (padding rows would enter the batch-norm statistics).
RUN = dict(
    epochs=2,
    batch_size=64,
    seed=3,
    validation_fraction=0.12,
    model_overrides={"hidden_sizes": (32,), "dropout_rate": 0.1, "batch_norm": True},
)
CLI_RUN = [
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--seed",
    "3",
    "--validation-fraction",
    "0.12",
    "--set",
    "hidden_sizes=(32,)",
    "--set",
    "dropout_rate=0.1",
    "--set",
    "batch_norm=True",
    "--no-progress",
]
TIMEOUT = 240  # seconds for the whole two-process run, so a hung collective fails


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices_per_process: int = 1) -> dict:
    # CPU devices only, whatever accelerator or forced device count is around.
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    return {**env, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}"}


def _run_processes(commands: list[list[str]], env: dict, logs_dir, timeout: float = TIMEOUT) -> list[str]:
    """Run the commands at once; return their outputs. Fails (killing the rest) as soon as
    one exits non-zero, or when ``timeout`` passes."""
    logs = [open(logs_dir / f"process{i}.log", "w+") for i in range(len(commands))]
    procs = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, text=True)
        for c, f in zip(commands, logs)
    ]
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs):
            failed = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    outputs = []
    for f in logs:
        f.seek(0)
        outputs.append(f.read())
        f.close()
    status = [p.returncode for p in procs]
    if any(status):
        timed_out = time.monotonic() > deadline
        pytest.fail(
            f"processes exited with {status}{' (timed out)' if timed_out else ''}:\n"
            + "\n".join(f"--- process {i} ---\n{out[-3000:]}" for i, out in enumerate(outputs))
        )
    return outputs


def test_two_processes_train_like_one(tmp_path):
    """train.py on 2 processes x 2 CPU devices (one 4-device mesh): the checkpointed weights
    equal one process's fit on one device on the same global batches within 1e-5; only
    process 0 prints and writes logs."""
    require_module("orbax.checkpoint")
    port, workdir = _free_port(), tmp_path / "run"
    outputs = _run_processes(
        [
            [
                sys.executable,
                "train.py",
                *CLI_RUN,
                "--workdir",
                str(workdir),
                "--num-devices",
                "4",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
                "--distributed-timeout",
                "60",
            ]
            for i in range(2)
        ],
        _env(devices_per_process=2),
        tmp_path,
    )

    one = fit("mlp", "digits", progress=False, num_devices=1, **RUN)
    two = read_variables(workdir)[0]  # the last epoch's checkpoint, written by both processes
    chex.assert_trees_all_close(two, jax.device_get(one.variables), atol=1e-5, rtol=0)

    assert re.search(r"devices: \[(CpuDevice.*){4}\] \(2 process\(es\)\)", outputs[0]), outputs[0]
    test_line = re.search(r"^test: accuracy=([\d.]+)", outputs[0], re.M)
    assert test_line and abs(float(test_line[1]) - one.test_metrics["accuracy"]) < 1e-3
    assert "test:" not in outputs[1] and "config:" not in outputs[1], outputs[1]
    lines = [line for line in (workdir / "metrics.jsonl").read_text().splitlines() if '"event": "step"' not in line]
    assert len(lines) == 3, lines  # two epochs and the test, written once
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]


def test_num_devices_must_fit_the_devices():
    n = len(jax.devices())
    assert select_devices(None) == jax.devices()
    assert select_devices(n) == jax.devices()
    for bad in (0, -1, n + 1):
        with pytest.raises(ValueError, match=rf"num_devices \(--num-devices\).*{n} devices? available"):
            select_devices(bad)
    with pytest.raises(ValueError, match="num_devices"):
        fit("mlp", "digits", epochs=1, num_devices=n + 4, progress=False)


def test_num_devices_over_processes(monkeypatch):
    """Each process keeps the same number of its own devices."""
    fake = [types.SimpleNamespace(id=i, process_index=i // 2, platform="cpu") for i in range(4)]
    monkeypatch.setattr(jax, "devices", lambda: fake)
    assert [d.id for d in select_devices(2)] == [0, 2]
    assert select_devices(4) == fake
    with pytest.raises(ValueError, match="multiple of the process count 2"):
        select_devices(3)


def test_process_options_are_checked():
    check_process_args("127.0.0.1:12355", 2, 1)
    check_process_args("[::1]:80", 1, 0)
    for args, option in (
        (("127.0.0.1", 2, 0), "--coordinator"),
        (("127.0.0.1:0", 2, 0), "--coordinator"),
        (("127.0.0.1:70000", 2, 0), "--coordinator"),
        ((":12355", 2, 0), "--coordinator"),
        (("127.0.0.1:12355", 0, 0), "--num-processes"),
        (("127.0.0.1:12355", 2, 2), "--process-id"),
        (("127.0.0.1:12355", 2, -1), "--process-id"),
    ):
        with pytest.raises(ValueError, match=option):
            check_process_args(*args)
    with pytest.raises(ValueError, match="together"):  # raised before jax.distributed is touched
        initialize_distributed("127.0.0.1:12355", num_processes=2)


def test_cli_bad_device_and_process_options_exit_2():
    for args, message in (
        (["--num-devices", "0"], "num_devices (--num-devices) must be between 1 and"),
        (["--coordinator", "127.0.0.1:12355", "--num-processes", "2", "--process-id", "2"], "--process-id"),
    ):
        proc = subprocess.run(
            [sys.executable, "train.py", "--no-progress", "--epochs", "1", *args],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.startswith("error:") and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
