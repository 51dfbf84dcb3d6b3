"""Local response normalisation (zoo.nn.normalization) against the paper's formula written
out in NumPy and against torch.nn.LocalResponseNorm."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.nn.normalization import local_response_norm


def _lrn_numpy(a, n, k, alpha, beta):
    """Krizhevsky et al. 2012, eq. in Section 3.3, written out with loops (channels last)."""
    c = a.shape[-1]
    b = np.empty_like(a)
    for i in range(c):
        lo, hi = max(0, i - n // 2), min(c - 1, i + (n - 1) // 2)
        b[..., i] = a[..., i] / (k + alpha * (a[..., lo : hi + 1] ** 2).sum(-1)) ** beta
    return b


@pytest.mark.parametrize("n, k, alpha, beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.5), (4, 2.0, 0.1, 1.0)])
def test_lrn_matches_numpy_reference(n, k, alpha, beta):
    a = np.random.default_rng(0).normal(size=(2, 4, 3, 9)).astype(np.float32) * 3
    got = local_response_norm(jnp.asarray(a), size=n, k=k, alpha=alpha, beta=beta)
    np.testing.assert_allclose(got, _lrn_numpy(a.astype(np.float64), n, k, alpha, beta), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n, k, alpha, beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.5), (4, 2.0, 0.1, 1.0)])
def test_lrn_matches_torch_with_alpha_times_size(n, k, alpha, beta):
    torch = require_module("torch")
    a = np.random.default_rng(1).normal(size=(2, 5, 4, 11)).astype(np.float32) * 3
    # torch computes k + (alpha_t / n) * sum, so alpha_t = alpha * n; torch is NCHW.
    ref = torch.nn.LocalResponseNorm(n, alpha=alpha * n, beta=beta, k=k)(torch.from_numpy(a).permute(0, 3, 1, 2))
    ref = ref.permute(0, 2, 3, 1).numpy()
    got = local_response_norm(jnp.asarray(a), size=n, k=k, alpha=alpha, beta=beta)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
