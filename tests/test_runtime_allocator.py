"""zoo.runtime.tune_cpu: with it, a worker thread's large blocks are reused instead of
mapped and page-faulted afresh on each allocation; ZOO_TUNE_CPU=0 leaves the process
as it is. Each case runs in its own process (the setting is process-wide)."""

import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Allocates and frees a 100 MiB array 5 times in a new thread (as XLA's threads do
# with a step's temporaries), after a first round; prints the minor page faults per
# allocation and what tune_cpu applied.
CHILD = """
import json, resource, threading
import numpy as np
from zoo import runtime
applied = runtime.tune_cpu()
faults = []
def work():
    np.ones(100 * 2**18, np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        np.ones(100 * 2**18, np.float32)
    faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(json.dumps({"applied": applied, "faults_per_alloc": faults[0], "cpu_tuned": runtime.cpu_tuned()}))
"""

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="tune_cpu is glibc's mallopt"
)


def _child(tune: bool) -> dict:
    env = {**os.environ, "ZOO_TUNE_CPU": "1" if tune else "0"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_tuned_process_reuses_freed_blocks():
    tuned, untouched = _child(tune=True), _child(tune=False)
    assert untouched["applied"] == {} and not untouched["cpu_tuned"]
    assert tuned["cpu_tuned"]  # what choose_conv_impl reads
    assert set(tuned["applied"]) == {"M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD", "M_TOP_PAD", "M_ARENA_MAX"}
    assert tuned["applied"]["M_ARENA_MAX"] == 1
    assert tuned["applied"]["M_MMAP_THRESHOLD"] >= 32 * 2**20
    # Mapped afresh, 100 MiB is 50 faults even in 2 MiB huge pages (25 leaves a margin); reused, none.
    assert untouched["faults_per_alloc"] >= 25
    assert tuned["faults_per_alloc"] < 5
