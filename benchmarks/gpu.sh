#!/usr/bin/env bash
pip install -q -U ${ZOO_WHEELS:+--no-index --find-links "$ZOO_WHEELS"} "jax[cuda12]==0.10.2"
# The GPU run of issue 19 (lever 5), from the repository root on a machine with one NVIDIA
# GPU: `bash benchmarks/gpu.sh` (about 5-8 minutes). The line above installs the CUDA wheels
# of the jax version the project pins (0.10.2: jax-cuda12-plugin and jax-cuda12-pjrt, with
# the NVIDIA CUDA/cuDNN libraries); on a machine without PyPI set ZOO_WHEELS to a folder
# holding them. Writes benchmarks/results-gpu.md (the format of results-cpu.md; expected
# figures: README, "Benchmarks"). torch figures need a CUDA build of torch; without one the
# torch columns read n/a, with the reason in the notes.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import jax; assert jax.default_backend() == 'gpu', jax.devices(); print('jax', jax.__version__, jax.devices())"
python -c "import torch; print('torch', torch.__version__, 'CUDA' if torch.cuda.is_available() else 'without CUDA: torch figures absent')" \
  || echo "torch not installed: torch figures absent"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv || true
python -m zoo.bench --suite gpu --dry-run
python -m zoo.bench --suite gpu
# cuDNN's LSTM against the scan, forward and gradient (these tests skip without a GPU).
python -m pytest tests/nn/test_cudnn_lstm.py -q
