"""The GPU suite: ``python -m zoo.bench --suite gpu`` (issue 19, lever 5; run by ``benchmarks/gpu.sh``).

On one NVIDIA GPU with the jax CUDA wheels, in a few minutes: ResNet-50's bf16 train step
with its MFU against the bf16 matmul peak measured in the same run, the LSTM through cuDNN
(``impl="auto"``, `zoo.nn.cudnn_lstm`) and through the scan (``impl="scan"``) at two sizes,
and the LeNet-5, VGG-11 and DenseNet-121 train steps, each against its PyTorch twin where
torch has CUDA (else the torch column reads n/a and a note says why). Every run goes through
`zoo.bench.harness.run_entry`; the report is `zoo.bench.report.report_markdown`, written to
``benchmarks/results-gpu.md``. ``--dry-run`` lists the runs anywhere; running it without a
GPU is one error line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax

from zoo.bench.harness import EntryResult, run_entry
from zoo.bench.suite import Entry, _square_image, suite_entry

# Extra entries the CPU suite leaves out (too slow on 2 cores).
RESNET50 = Entry(
    "resnet50",
    model="resnet50",
    batch_size=128,
    image_size=224,
    config=_square_image(3, num_classes=1000),
    torch_twin="resnet50",
    description="ResNet-50, 224x224, 1000 classes",
)
DENSENET121 = Entry(
    "densenet121",
    model="densenet121",
    batch_size=64,
    image_size=224,
    config=_square_image(3, num_classes=1000),
    description="DenseNet-121, 224x224, 1000 classes (no PyTorch twin)",
)


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """One row of the suite: ``entry`` on its workload with ``shape`` (batch_size, seq_len,
    image_size) and ``dtype``, the model built with ``overrides``; ``label`` names the row."""

    label: str
    entry: Entry
    shape: Mapping[str, int] = dataclasses.field(default_factory=dict)
    dtype: str = "float32"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def workload(self):
        return self.entry.workload(**self.shape, dtype=self.dtype)


def _suite(name: str) -> Entry:
    entry = suite_entry(name)
    assert entry is not None, name
    return entry


GPU_SUITE: tuple[SuiteRun, ...] = (
    SuiteRun("resnet50, bf16", RESNET50, dtype="bfloat16"),
    SuiteRun("lstm, `impl=auto` (cuDNN)", _suite("lstm")),
    SuiteRun("lstm, `impl=scan`", _suite("lstm"), overrides={"impl": "scan"}),
    SuiteRun(
        "lstm B=128 T=512 H=1024, `impl=auto` (cuDNN)",
        _suite("lstm"),
        shape={"batch_size": 128, "seq_len": 512},
        overrides={"hidden_size": 1024},
    ),
    SuiteRun(
        "lstm B=128 T=512 H=1024, `impl=scan`",
        _suite("lstm"),
        shape={"batch_size": 128, "seq_len": 512},
        overrides={"hidden_size": 1024, "impl": "scan"},
    ),
    SuiteRun("lenet5", _suite("lenet5")),
    SuiteRun(
        "vgg11 224x224 B=64, bf16", _suite("vgg11"), shape={"batch_size": 64, "image_size": 224}, dtype="bfloat16"
    ),
    SuiteRun("densenet121, bf16", DENSENET121, dtype="bfloat16"),
)
SUITES = {"gpu": GPU_SUITE}
# Platforms a suite runs on (`jax.default_backend()`: "gpu" for CUDA and ROCm alike).
SUITE_PLATFORMS = {"gpu": ("gpu",)}


def check_platform(suite: str, platform: str | None = None) -> None:
    """Raise ValueError (one line) unless the default backend can run ``suite``."""
    platform = platform or jax.default_backend()
    if platform not in SUITE_PLATFORMS[suite]:
        raise ValueError(
            f"the {suite} suite needs a {'/'.join(SUITE_PLATFORMS[suite])} backend, but jax's default backend is "
            f"{platform!r}: install the jax CUDA wheels (benchmarks/gpu.sh does) or list the runs with --dry-run"
        )


def dtypes(runs: Sequence[SuiteRun]) -> tuple[str, ...]:
    """The dtypes of ``runs``, float32 first: the matmul peaks the report measures."""
    present = {r.dtype for r in runs}
    return tuple(d for d in ("float32", "bfloat16") if d in present)


def suite_listing(runs: Sequence[SuiteRun]) -> str:
    """The runs as a Markdown table (what ``--dry-run`` prints)."""
    lines = ["| run | model | batch | shape | dtype | overrides | torch twin |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        w = r.workload()
        shape = f"T={w.seq_len}" if w.seq_len else f"{w.image_size}x{w.image_size}" if w.image_size else "–"
        overrides = ", ".join(f"{k}={v!r}" for k, v in r.overrides.items()) or "–"
        lines.append(
            f"| {r.label} | {r.entry.model} | {w.batch_size} | {shape} | {w.dtype} | {overrides} "
            f"| {r.entry.torch_twin or '–'} |"
        )
    return "\n".join(lines)


def run_runs(
    runs: Sequence[SuiteRun],
    *,
    compare: Sequence[str] = ("torch",),
    steps: int | None = None,
    rounds: int = 5,
    warmup: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[EntryResult]:
    """`run_entry` of every run, each result named by its run's label."""
    results = []
    for i, run in enumerate(runs, 1):
        if progress:
            progress(f"[{i}/{len(runs)}] {run.label} ...")
        result = run_entry(
            run.entry,
            run.workload(),
            overrides=run.overrides,
            compare=compare,
            steps=steps,
            rounds=rounds,
            warmup=warmup,
        )
        results.append(dataclasses.replace(result, entry=run.label))
    return results
