"""zoo.runtime's persistent compilation cache: a second process loads what the first
compiled (JAX's own monitoring events say so), the bench's bypass compiles afresh, and
the switches (ZOO_COMPILATION_CACHE, XDG_CACHE_HOME) do what they say."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from zoo import runtime

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Compiles one small program twice: through the cache, then with the cache bypassed.
CHILD = """
import json, jax, jax.numpy as jnp, numpy as np
from zoo import runtime
folder = runtime.enable_compilation_cache()
f = lambda x: jnp.tanh(x @ x.T).sum()
x = np.ones((8, 8), np.float32)  # a NumPy array: no other program is compiled
with runtime.compile_stats() as cached:
    jax.jit(f).lower(x).compile()
with runtime.compile_stats() as bypassed, runtime.compilation_cache_bypassed():
    jax.jit(lambda x: f(x) + 1).lower(x).compile()
print(json.dumps({"folder": str(folder), "cached": vars(cached), "bypassed": vars(bypassed)}))
"""


def _child(cache: pathlib.Path) -> dict:
    env = {**os.environ, "ZOO_COMPILATION_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    first = _child(cache)
    assert first["folder"] == str(cache)
    assert first["cached"]["programs"] == 1 and first["cached"]["cache_hits"] == 0
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert len(entries) == 1  # the bypassed compile wrote nothing

    second = _child(cache)
    assert second["cached"]["programs"] == 1 and second["cached"]["cache_hits"] == 1
    # Bypassed: compiled afresh, although the first process compiled the same program.
    assert second["bypassed"]["programs"] == 1 and second["bypassed"]["cache_hits"] == 0
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_switched_off_by_the_environment(tmp_path, monkeypatch):
    before = jax.config.jax_compilation_cache_dir
    for off in ("0", "off", "false"):
        monkeypatch.setenv("ZOO_COMPILATION_CACHE", off)
        assert runtime.enable_compilation_cache(tmp_path / "never") is None
    assert jax.config.jax_compilation_cache_dir == before
    assert not (tmp_path / "never").exists()


def test_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.default_cache_dir() == tmp_path / "zoo" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert runtime.default_cache_dir() == pathlib.Path.home() / ".cache" / "zoo" / "jax"


def test_compile_stats_counts_programs_without_a_cache():
    with runtime.compile_stats() as stats:
        jax.jit(lambda x: x * 3.0 + 1.0).lower(np.ones(5, np.float32)).compile()
    assert stats.programs == 1 and stats.cache_hits == 0 and stats.xla_s > 0
    assert stats.summary().startswith("compile: ")


@pytest.fixture
def jax_cache_settings_restored():
    """Puts JAX's compilation cache settings back as they were (the test turns it on)."""
    names = (
        "jax_compilation_cache_dir",
        "jax_enable_compilation_cache",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
        "jax_compilation_cache_max_size",
    )
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()


def test_train_cli_caches_by_default_and_says_what_compiling_cost(
    tmp_path, monkeypatch, capsys, jax_cache_settings_restored
):
    spec = importlib.util.spec_from_file_location("train_cli_cache", ROOT / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.setenv("ZOO_COMPILATION_CACHE", str(tmp_path / "cache"))
    args = ["--no-progress", "--epochs", "1", "--set", "hidden_sizes=(8,)", "--no-tune-cpu"]
    assert train.run(args) == 0
    out = capsys.readouterr().out
    assert f"compilation cache: {tmp_path / 'cache'}" in out
    line = next(line for line in out.splitlines() if line.startswith("compile: "))
    assert re.search(r"XLA [\d.]+ s for \d+ programs, \d+ from the persistent cache", line), line
    assert any(p.name.endswith("-cache") for p in (tmp_path / "cache").iterdir())


def test_run_once_gives_the_op_by_op_initialisation():
    # The engine initialises through run_once (one cheaply compiled program): the same
    # random bits as op by op, the floats equal up to rounding.
    import optax

    import zoo
    from zoo.train.state import create_train_state

    model = zoo.create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)

    def make():
        return create_train_state(model, optax.adam(1e-3), (28, 28, 1), seed=3)

    eager, once = make(), runtime.run_once(make)
    assert jax.tree.structure(once) == jax.tree.structure(eager)
    for a, b in zip(jax.tree.leaves(once), jax.tree.leaves(eager)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    assert float(np.abs(np.asarray(once.params["conv1"]["kernel"])).sum()) > 0
