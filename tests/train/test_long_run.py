"""A long run with a work dir: memory stays flat after warm-up and nothing recompiles
after the first epoch (checkpoints no longer grow with the history)."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = textwrap.dedent("""
    import json, sys, threading, time
    import jax
    import numpy as np
    import zoo
    from zoo.data import Dataset

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, *a, **k: compiles.append(time.perf_counter())
        if event == "/jax/core/compile/backend_compile_duration" else None)
    samples = []
    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mib()))
            time.sleep(0.2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    data = Dataset(name="tiny", task="classification", x_train=x, y_train=y, x_test=x[:20],
                   y_test=y[:20], num_classes=2)
    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    first_epoch_end = []
    result = zoo.fit("mlp", data, epochs=50, batch_size=1, validation_fraction=0.0, progress=False,
                     model_overrides={"hidden_sizes": (8,)}, workdir=sys.argv[1])
    stop.set()
    epochs = result.history
    t_first = t0 + epochs[0]["epoch_seconds"]
    print(json.dumps({"steps": int(result.state.step), "samples": samples, "compiles": compiles,
                      "t_first": t_first, "t_end": time.perf_counter()}))
""")


def test_5000_steps_with_a_workdir_keep_memory_flat_and_never_recompile(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["steps"] == 5000
    # The first epoch compiles the step, the first checkpoint saves compile orbax's copies and
    # the test evaluation compiles once at the end; nothing may compile in between.
    span = out["t_end"] - out["t_first"]
    late = [t for t in out["compiles"][:-1] if t > out["t_first"] + 0.25 * span]
    # On a loaded machine the first checkpoint's background save (orbax, its own thread) can
    # compile after the first quarter once; a step or a save that recompiled would show up
    # once per epoch, 37 times or more here.
    assert len(late) <= 1, f"{len(late)} compilations after the first quarter of the run"
    run = [(t, m) for t, m in out["samples"] if t > out["t_first"]]
    warm = run[len(run) // 4][1]  # a quarter into the run: caches and arenas are full
    peak = max(m for _, m in run[len(run) // 4 :])
    assert peak <= warm * 1.05, f"RSS grew from {warm:.0f} MiB to {peak:.0f} MiB"
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        assert sum(1 for line in f if '"event": "step"' not in line) == 51  # 50 epochs and the test line
