"""Contenders for the RBM benchmark: one CD-1 step on a batch of binarised digits.

"zoo" is `zoo.models.energy.rbm_cd_gradient` (k = 1) plus the ascent update
``params += learning_rate * gradient``, one jit'd call with the parameters donated;
"sklearn" is scikit-learn's ``BernoulliRBM.partial_fit`` on the same batch, with the same
initial weights and learning rate, its BLAS on one thread (its step is PCD-1 in float64: one Gibbs step from its
persistent hidden samples, after converting and validating the batch, as its API does).
The entry's model config gives the sizes: visible units = prod(input_shape), num_hidden.
"""

from __future__ import annotations

import importlib.util
import math
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np

from zoo.bench.contenders import Contender, Unavailable
from zoo.bench.flops import compiled_memory_bytes, count_step_flops
from zoo.bench.suite import Workload

LEARNING_RATE = 0.1


def digit_bits(batch_size: int, visible: int) -> np.ndarray:
    """(batch_size, visible) float32 in {0, 1}: the first binarised digits (8x8, pixel
    > 0.5), repeated to fill the batch; random bits when the size is not 64."""
    if visible != 64:
        return (np.random.default_rng(0).random((batch_size, visible)) < 0.5).astype(np.float32)
    from zoo.data import load_dataset

    x = load_dataset("digits").x_train.reshape(-1, 64)
    return (np.resize(x, (batch_size, 64)) > 0.5).astype(np.float32)


def _initial(visible: int, hidden: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        "kernel": rng.normal(0, 0.01, (visible, hidden)).astype(np.float32),
        "visible_bias": np.zeros(visible, np.float32),
        "hidden_bias": np.zeros(hidden, np.float32),
    }


def _blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded (none without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


def rbm_contenders(config: Mapping[str, Any], workload: Workload) -> dict[str, Callable[[], Contender]]:
    """Builders of the "zoo" and "sklearn" contenders for ``config`` on ``workload``."""
    from zoo.models.energy import rbm_cd_gradient

    visible, hidden = math.prod(config["input_shape"]), int(config["num_hidden"])
    bits = digit_bits(workload.batch_size, visible)
    params_count = visible * hidden + visible + hidden

    def zoo() -> Contender:
        def step(params, key, v):
            key, sub = jax.random.split(key)
            grad, _ = rbm_cd_gradient(params, v, sub, k=1)
            return jax.tree.map(lambda p, g: p + LEARNING_RATE * g, params, grad), key

        fn = jax.jit(step, donate_argnums=(0, 1))
        args = (jax.device_put(_initial(visible, hidden)), jax.random.PRNGKey(0), jax.device_put(bits))
        start = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - start
        flops, source = count_step_flops(fn, compiled, *args)
        carried = list(args[:2])

        def run_step():
            carried[:] = compiled(*carried, args[2])
            jax.block_until_ready(carried)

        return Contender("zoo", run_step, params_count, compile_s, flops, source, compiled_memory_bytes(compiled))

    def sklearn() -> Contender:
        if importlib.util.find_spec("sklearn") is None:
            raise Unavailable("scikit-learn is not installed (pip install scikit-learn)")
        from sklearn.neural_network import BernoulliRBM

        init = _initial(visible, hidden)
        rbm = BernoulliRBM(n_components=hidden, learning_rate=LEARNING_RATE, batch_size=len(bits), random_state=0)
        rbm.components_ = np.asarray(init["kernel"].T, np.float64, order="F")
        rbm.intercept_hidden_ = np.zeros(hidden)
        rbm.intercept_visible_ = np.zeros(visible)
        rbm.partial_fit(bits)  # sets the input checks' state (n_features_in_) and h_samples_
        # Its BLAS on one thread during its step: at these sizes that is its fastest, and
        # with more, OpenBLAS's threads on this shared machine stall (steps of 16 ms
        # instead of 0.5 ms). The setting is restored after each step.
        blas = _blas_controllers()

        def run_step():
            before = [c.num_threads for c in blas]
            for c in blas:
                c.set_num_threads(1)
            try:
                rbm.partial_fit(bits)
            finally:
                for c, n in zip(blas, before):
                    c.set_num_threads(n)

        return Contender("sklearn", run_step, params_count)

    return {"zoo": zoo, "sklearn": sklearn}
