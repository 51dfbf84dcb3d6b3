"""The GPU suite (``python -m zoo.bench --suite gpu``, ``benchmarks/gpu.sh``), tested on CPU:
its runs, the dry run, the one-line refusal without a GPU, the bf16 MFU denominator, the
torch contender without CUDA, and the runner on tiny versions of its runs."""

import importlib.metadata
import pathlib

import jax
import pytest
from conftest import require_module

from zoo import registry
from zoo.bench import gpu_suite, harness, report
from zoo.bench.__main__ import main
from zoo.bench.contenders import Unavailable, torch_contender
from zoo.bench.suite import Workload, suite_entry
from zoo.nn import fastconv

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_suite_runs_resnet50_bf16_lstm_cudnn_and_scan_lenet_vgg_densenet():
    runs = {r.label: r for r in gpu_suite.GPU_SUITE}
    assert runs["resnet50, bf16"].workload() == Workload(128, image_size=224, dtype="bfloat16")
    assert runs["lstm, `impl=auto` (cuDNN)"].overrides == {}
    assert registry.get_spec("lstm").config["impl"] == "auto"  # auto: cuDNN on a CUDA GPU
    assert runs["lstm, `impl=scan`"].overrides == {"impl": "scan"}
    assert [r.entry.model for r in gpu_suite.GPU_SUITE] == ["resnet50", *["lstm"] * 4, "lenet5", "vgg11", "densenet121"]
    for run in gpu_suite.GPU_SUITE:  # every model registered, every override a config key
        spec = registry.get_spec(run.entry.model)
        assert set(run.overrides) <= set(spec.config), run.label
        run.workload()
    assert gpu_suite.dtypes(gpu_suite.GPU_SUITE) == ("float32", "bfloat16")


def test_dry_run_lists_the_runs_and_running_on_cpu_is_one_error_line(capsys):
    assert main(["--suite", "gpu", "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "| resnet50, bf16 | resnet50 | 128 | 224x224 | bfloat16 | – | resnet50 |" in listing
    assert "| lstm, `impl=scan` | lstm | 64 | T=128 | float32 | impl='scan' | lstm |" in listing
    assert listing.count("\n| ") == len(gpu_suite.GPU_SUITE)  # one row per run under the header
    assert main(["--suite", "gpu"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the gpu suite needs a gpu backend, but jax's default backend is 'cpu'")
    assert main(["--suite", "gpu", "--batch-size", "8", "--dtype", "bfloat16"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: the gpu suite fixes each run's shapes, dtype and mode: drop --batch-size, --dtype"
    with pytest.raises(SystemExit):
        main(["--suite", "tpu"])


def test_platform_names_jax_reports_for_gpus():
    # jax.default_backend() names CUDA and ROCm backends "gpu" (xla_bridge's platform aliases).
    gpu_suite.check_platform("gpu", "gpu")
    for platform in ("cpu", "tpu", "cuda"):
        with pytest.raises(ValueError, match="needs a gpu backend"):
            gpu_suite.check_platform("gpu", platform)
    for platform in ("gpu", "cuda", "rocm", "tpu"):  # choose_conv_impl: XLA (cuDNN) off CPU
        assert fastconv.choose_conv_impl((16, 56, 56, 64), (3, 3, 64, 64), 1, platform=platform) == "xla"
        assert fastconv.choose_conv_impl((128, 28, 28, 1), (5, 5, 1, 6), 1, platform=platform) == "xla"


def test_gpu_script_installs_the_cuda_wheels_of_the_installed_jax_then_runs_the_suite():
    lines = (REPO / "benchmarks" / "gpu.sh").read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("pip install") and f'"jax[cuda12]=={importlib.metadata.version("jax")}"' in lines[1]
    assert "python -m zoo.bench --suite gpu" in lines


class _Gpu:
    platform = "gpu"


def test_torch_without_cuda_is_reported_absent_on_a_gpu(monkeypatch):
    torch = require_module("torch")  # the pinned CPU torch==2.13.0: installed in CI
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    monkeypatch.setattr(jax, "devices", lambda *a: [_Gpu()])
    config = {**registry.get_spec("lenet5").config}
    with pytest.raises(Unavailable, match=r"has no CUDA here \(torch.cuda.is_available\(\) is False\)"):
        torch_contender("lenet5", config, "classification", {}, Workload(2))


def test_tiny_runs_through_the_suite_runner_with_bf16_mfu_on_the_bf16_peak(monkeypatch, tmp_path):
    peaks = {"float32": 100e9, "bfloat16": 400e9}  # stand-ins: the real ones take seconds to measure
    monkeypatch.setattr(harness, "matmul_peak", lambda dtype: peaks[dtype])
    monkeypatch.setattr(report, "matmul_peak", lambda dtype: peaks[dtype])
    tiny = (
        gpu_suite.SuiteRun("lenet5 tiny, bf16", suite_entry("lenet5"), {"batch_size": 2}, "bfloat16"),
        gpu_suite.SuiteRun(
            "lstm tiny, `impl=scan`",
            suite_entry("lstm"),
            {"batch_size": 2, "seq_len": 3},
            overrides={"hidden_size": 4, "impl": "scan"},
        ),
    )
    monkeypatch.setitem(gpu_suite.SUITES, "gpu", tiny)
    monkeypatch.setitem(gpu_suite.SUITE_PLATFORMS, "gpu", ("cpu",))
    argv = ["--suite", "gpu", "--compare", "torch", "--steps", "1", "--rounds", "5", "--warmup", "0"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "results-cpu.md").read_text()
    assert "- Command: `python -m zoo.bench --suite gpu --compare torch" in text
    assert "float32 100.0 GFLOP/s, bfloat16 400.0 GFLOP/s" in text
    rows = {}
    for line in text.splitlines():  # the summary table's row of each run (the contenders table follows)
        if line.startswith("| l"):
            rows.setdefault(line.split(" | ")[0][2:], line)
    lenet = rows["lenet5 tiny, bf16"].split(" | ")
    assert lenet[1:4] == ["train", "bfloat16", "2"]
    gflops_per_s, mfu = float(lenet[10]), float(lenet[11])
    assert mfu == pytest.approx(gflops_per_s / 400, abs=6e-4)  # the bf16 peak, not the float32 one
    assert rows["lstm tiny, `impl=scan`"].split(" | ")[4] == "1,154"  # hidden_size=4 reached the model
    assert len(rows["lstm tiny, `impl=scan`"].split(" | ")[-2].split(" ")) == 2  # a zoo/torch ratio (min–max)


@pytest.mark.parametrize("before, after, source", [(0, 5 * 2**20, "device"), (9 * 2**20, 9 * 2**20, "compiled")])
def test_device_peak_memory_only_when_this_benchmark_raised_it(monkeypatch, before, after, source):
    # A GPU's peak is process-wide: in a suite, a row must not show an earlier model's peak.
    readings = iter([before, after])
    monkeypatch.setattr(harness, "device_peak_bytes", lambda device: next(readings))
    entry = suite_entry("mlp")
    workload = entry.workload(batch_size=2, image_size=4)
    result = harness.run_entry(entry, workload, overrides={"hidden_sizes": (4,)}, steps=1, rounds=1, warmup=0)
    zoo = result.zoo
    if source == "device":
        assert (zoo.memory_bytes, zoo.memory_source) == (after, "device memory_stats peak")
    else:
        assert zoo.memory_source == "compiled memory_analysis" and 0 < zoo.memory_bytes < 2**20
