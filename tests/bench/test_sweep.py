"""Scaling sweeps (``python -m zoo.bench --sweep``): a tiny sweep end to end, and the parts."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo.bench import sweep
from zoo.bench.__main__ import main


def _rows(table: str) -> list[dict]:
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def test_tiny_lstm_sweep_writes_table_per_token_figures_and_plot(tmp_path, capsys):
    argv = "--sweep lstm-seq-len --values 4,8 --batch-size 2 --set hidden_size=8 --compare torch "
    argv += f"--steps 1 --rounds 5 --warmup 1 --results-dir {tmp_path}"
    assert main(argv.split()) == 0
    document = (tmp_path / "sweeps-cpu.md").read_text()
    assert "## lstm-seq-len: LSTM train step vs sequence length T" in document
    assert "- Command: `python -m zoo.bench --sweep lstm-seq-len --values 4,8" in document
    assert "- Fixed: batch_size=2, dtype=float32, mode=train, hidden_size=8, num_classes=10" in document
    rows = _rows(document.split("- Timing:")[1])
    assert [r["seq_len"] for r in rows] == ["4", "8"] and all(r["timed steps"] == "5 x 1" for r in rows)
    for row in rows:  # per token = median step / (B * T): 3 significant digits, the step 2 decimals
        tokens = 2 * int(row["seq_len"])
        for name in ("zoo", "torch"):
            step_ms = float(row[f"{name} step ms, median (IQR)"].split(" ")[0])
            step_from_per_token_ms = float(row[f"{name} µs/token"]) * tokens * 1e-3
            # Both columns are rounded: the step to +-0.005 ms, the per-token figure to 0.5%.
            assert abs(step_from_per_token_ms - step_ms) <= 0.005 + 5e-3 * step_ms
        assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d–\d+\.\d\d\)", row["zoo/torch"])
        assert float(row["zoo compile s"]) > 0
    # The LSTM's FLOPs grow linearly in T (scan body x trip count).
    flops = [float(r["GFLOP/step"]) for r in rows]
    assert flops[1] / flops[0] == pytest.approx(2.0, rel=0.05)
    assert "- zoo: step time grows as seq_len^" in document and "zoo compile:" in document
    png = tmp_path / "sweep-lstm-seq-len-cpu.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "![lstm-seq-len](sweep-lstm-seq-len-cpu.png)" in document
    assert "| seq_len | timed steps |" in capsys.readouterr().out


def test_sweep_usage_errors_exit_2_with_one_line(capsys):
    assert main(["--sweep", "lstm-seqlen"]) == 2
    assert main(["--sweep", "lstm-seq-len", "--seq-len", "8"]) == 2  # the axis itself
    assert main(["--sweep", "lstm-hidden", "--set", "hidden_size=8"]) == 2
    assert main(["--sweep", "lstm-batch", "--values", "0,2"]) == 2
    assert main(["--sweep", "lstm-batch", "--values", "8,x"]) == 2
    assert main(["--sweep", "lstm-batch", "--json", "out.json"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 6 and all(line.startswith("error: ") for line in errors)
    assert "Did you mean: lstm-seq-len" in errors[0] and "is the axis of sweep 'lstm-seq-len'" in errors[1]
    assert errors[4] == "error: --values takes comma-separated integers, got '8,x'"


def test_growth_exponent_reads_the_power_law():
    values = np.array([16, 32, 64, 128])
    assert sweep.growth_exponent(values, 3e-4 * values) == pytest.approx(1.0)
    assert sweep.growth_exponent(values, 1e-6 * values**2.0) == pytest.approx(2.0)
    assert sweep.growth_exponent([16], [1.0]) is None


def test_merge_sections_replaces_one_sweep_and_keeps_the_others_in_order():
    title = "# sweeps"
    doc = sweep.merge_sections("", "resnet18-batch", "R1\n", title)
    doc = sweep.merge_sections(doc, "lstm-seq-len", "L1\n", title)
    doc = sweep.merge_sections(doc, "resnet18-batch", "R2\n", title)
    assert doc == (
        "# sweeps\n\n<!-- sweep:lstm-seq-len -->\nL1\n<!-- /sweep:lstm-seq-len -->\n"
        "<!-- sweep:resnet18-batch -->\nR2\n<!-- /sweep:resnet18-batch -->\n"
    )


def test_every_sweep_names_a_suite_entry_and_a_unit():
    assert [s.name for s in sweep.SWEEPS] == [
        "lstm-seq-len",
        "lstm-batch",
        "lstm-hidden",
        "resnet18-image-size",
        "resnet18-batch",
    ]
    assert sweep.get_sweep("lstm-seq-len").values == (16, 32, 64, 128, 256, 512, 1024)
    with pytest.raises(ValueError, match="unknown unit"):
        sweep.Sweep("x", "lstm", "seq_len", (1,), "byte")


def test_sweeps_compile_cold_even_with_the_persistent_cache_on(tmp_path):
    settings = {
        "jax_compilation_cache_dir": str(tmp_path),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    before = {name: getattr(jax.config, name) for name in settings}
    try:
        for name, value in settings.items():
            jax.config.update(name, value)
        with sweep.cold_compiles():
            jax.jit(lambda x: x * 3.0 + 1.0).lower(jnp.ones(5)).compile()
        assert list(tmp_path.iterdir()) == []  # nothing read or written while cold
        jax.jit(lambda x: x * 5.0 - 2.0).lower(jnp.ones(7)).compile()
        assert list(tmp_path.iterdir())  # the cache works again after the block
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        sweep.compilation_cache.reset_cache()


def test_a_config_axis_sweeps_the_models_override():
    hidden = sweep.get_sweep("lstm-hidden")
    (point,) = sweep.run_sweep(hidden, values=[2], batch_size=1, seq_len=3, rounds=1, steps=1, warmup=0)
    assert point.result.status == "ok" and point.result.config["hidden_size"] == 2 and point.units == 3
    assert point.result.zoo.params == (64 + 2) * 4 * 2 + 4 * 2 + 2 * 10 + 10  # LSTM (I+H)x4H + 4H, head Hx10 + 10
