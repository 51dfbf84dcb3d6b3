"""Shared by the convolutional autoencoder and segmentation tests: copying a zoo model's
variables into its PyTorch twin (zoo.bench.torch_models) and reading the twin's output
back as NHWC."""

import numpy as np


def _t(torch, a):
    return torch.from_numpy(np.array(a, np.float32))  # a writable copy


def conv_to_torch(torch, conv, p, transposed=False):
    """A zoo (fast)Conv's or ConvTranspose's variables into a Conv2d / ConvTranspose2d:
    HWIO -> OIHW for convolutions, HW(in)(out) -> (in)(out)HW for transposed ones."""
    kernel = np.asarray(p["kernel"])
    conv.weight.copy_(_t(torch, kernel.transpose((2, 3, 0, 1) if transposed else (3, 2, 0, 1))))
    if "bias" in p:
        conv.bias.copy_(_t(torch, p["bias"]))


def stack_to_torch(torch, seq, params, stats, batch_norm):
    """A zoo ConvStack (Conv_j [BatchNorm_j]) into the twin's Sequential of [Conv2d,
    [BatchNorm2d], ReLU] x n."""
    step = 3 if batch_norm else 2
    for j in range(len(seq) // step):
        conv_to_torch(torch, seq[j * step], params[f"Conv_{j}"])
        if batch_norm:
            bn, name = seq[j * step + 1], f"BatchNorm_{j}"
            bn.weight.copy_(_t(torch, params[name]["scale"]))
            bn.bias.copy_(_t(torch, params[name]["bias"]))
            bn.running_mean.copy_(_t(torch, stats[name]["mean"]))
            bn.running_var.copy_(_t(torch, stats[name]["var"]))


def randomize(variables, seed=0, scale=0.3):
    """Every variable redrawn (batch-norm variances positive), so that no layer is an
    identity at initialisation and a wrong weight mapping shows."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)

    def draw(path, a):
        if "var" in jax.tree_util.keystr(path):
            return jnp.asarray(rng.uniform(0.5, 1.5, a.shape), jnp.float32)
        return jnp.asarray(scale * rng.standard_normal(a.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, variables)


def torch_nhwc(torch, module, x):
    """The twin (NCHW in) on NHWC ``x``, in eval mode, without gradients."""
    module.eval()
    with torch.no_grad():
        return module(_t(torch, np.asarray(x).transpose(0, 3, 1, 2))).numpy()
