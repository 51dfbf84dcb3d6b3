"""PyTorch weights into zoo CNNs: imported networks give PyTorch's outputs (checked
against the torch twins of `zoo.bench.torch_models`, which carry torchvision's key
names), bad state dicts are reported, and weights files are read safely."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_compile, require_module

import zoo
from zoo.interop import import_torch_state_dict, load_torch_state_dict
from zoo.train import finetune

# Imported networks compute what PyTorch computes up to float32 rounding: observed
# max |zoo - torch| <= 1.3e-6 of the largest logit over these nets (2 cores, XLA CPU).
RTOL, ATOL = 1e-5, 1e-6


def _abstract_variables(model):
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *model.input_shape)))


def _flat(tree):
    return {"/".join(str(k.key) for k in kp): np.asarray(v) for kp, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


# --------------------------------------------------------------------------------------
# PyTorch state dicts -> zoo variables, checked against torch twins in eval mode
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return require_module("torch")


@pytest.fixture(scope="module")
def twins(torch):
    from zoo.bench import torch_models

    return torch_models


def randomize_batch_norm(module, generator) -> None:
    """Random affine parameters and running statistics for every BatchNorm2d, so an import
    that mixed up scale/bias/mean/var, or ignored the statistics, changes the outputs."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


def _random_twin(torch, build, seed=0):
    torch.manual_seed(seed)  # torch's default initialisers draw from the global generator
    net = build()
    randomize_batch_norm(net, torch.Generator().manual_seed(seed + 1))
    return net.eval()


def _outputs(torch, model, variables, net, batch=2, seed=0):
    """Logits of the zoo model and of the torch twin on the same images (NHWC vs NCHW)."""
    x = np.random.default_rng(seed).normal(size=(batch, *model.input_shape)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    return np.asarray(got), expected


IMPORT_CASES = {
    # name: (zoo model, torch twin builder(twins)); small configs, torchvision layouts.
    "resnet18": (
        lambda: zoo.create_model("resnet18", input_shape=(64, 64, 3), num_classes=10, **fast_compile("resnet18")),
        lambda t: t.ResNet(t.BasicBlock, (2, 2, 2, 2), num_classes=10),
    ),
    "resnet50_layout": (
        lambda: zoo.create_model(
            "resnet50",
            input_shape=(64, 64, 3),
            num_classes=10,
            stage_sizes=(1, 1, 1, 1),
            width=16,
            **fast_compile("resnet50"),
        ),
        lambda t: t.ResNet(t.Bottleneck, (1, 1, 1, 1), num_classes=10, width=16),
    ),
    "densenet121_layout": (
        lambda: zoo.create_model(
            "densenet121",
            input_shape=(64, 64, 3),
            num_classes=10,
            block_config=(2, 2, 2, 2),
            growth_rate=8,
            num_init_features=16,
        ),
        lambda t: t.DenseNet(8, (2, 2, 2, 2), 16, num_classes=10),
    ),
    # The benchmark twin: no adaptive pool, a 2x2x32 last map flattened into fc1.
    "vgg11": (
        lambda: zoo.create_model(
            "vgg11", input_shape=(64, 64, 3), num_classes=10, width_divisor=16, **fast_compile("vgg11")
        ),
        lambda t: t.VGG(t.vgg_layers(16), 64, 3, 10, 0.5),
    ),
    # torchvision's VGG at a non-square input: its 7x7 adaptive pool folded into fc1.
    "vgg11_adaptive_pool": (
        lambda: zoo.create_model(
            "vgg11", input_shape=(64, 96, 3), num_classes=10, width_divisor=16, **fast_compile("vgg11")
        ),
        lambda t: t.VGGTorchvision(t.vgg_layers(16), num_classes=10),
    ),
    "alexnet_torchvision": (
        lambda: zoo.create_model("alexnet_torchvision", num_classes=10, widths=(8, 16, 16, 16, 8), fc_size=32),
        lambda t: t.AlexNetTorchvision(10, (8, 16, 16, 16, 8), 32),
    ),
    # The paper's AlexNet (LRN, two towers) as a Sequential port: matched by module order.
    "alexnet_paper": (
        lambda: zoo.create_model("alexnet", num_classes=10, widths=(16, 32, 24, 24, 16), fc_size=32),
        lambda t: t.AlexNetPaper(10, (16, 32, 24, 24, 16), 32),
    ),
}


@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_imported_torch_weights_give_torch_outputs(case, torch, twins):
    build_model, build_twin = IMPORT_CASES[case]
    model = build_model()
    net = _random_twin(torch, lambda: build_twin(twins))
    variables = import_torch_state_dict(model, _abstract_variables(model), net.state_dict())
    got, expected = _outputs(torch, model, variables, net)
    assert expected.std() > 1e-3  # a live network, not a constant output
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * np.abs(expected).max())


def test_flatten_order_matters_for_vgg(torch, twins):
    """Negative control: importing fc1 without the (C, H, W) -> (H, W, C) row permutation
    gives other logits, so the comparison above does see the permutation."""
    model = zoo.create_model(
        "vgg11", input_shape=(64, 64, 3), num_classes=10, width_divisor=16, **fast_compile("vgg11")
    )
    net = _random_twin(torch, lambda: twins.VGG(twins.vgg_layers(16), 64, 3, 10, 0.5))
    variables = import_torch_state_dict(model, _abstract_variables(model), net.state_dict())
    unpermuted = jax.tree.map(lambda a: a, variables)
    unpermuted["params"]["fc1"]["kernel"] = jnp.asarray(net.classifier[0].weight.detach().numpy().T)
    got, expected = _outputs(torch, model, unpermuted, net)
    assert np.abs(got - expected).max() > 1e-2 * np.abs(expected).max()


def test_numpy_values_legacy_densenet_names_and_module_prefix(torch, twins):
    model = zoo.create_model(
        "densenet121", input_shape=(32, 32, 3), num_classes=4, block_config=(1, 2), growth_rate=4, num_init_features=8
    )
    net = _random_twin(torch, lambda: twins.DenseNet(4, (1, 2), 8, num_classes=4))
    reference = import_torch_state_dict(model, _abstract_variables(model), net.state_dict())
    # Old torchvision files say "denselayer1.norm.1.weight"; DataParallel adds "module.".
    renamed = {
        "module." + k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v.numpy()
        for k, v in net.state_dict().items()
    }
    assert any(".norm.1." in k for k in renamed)
    variables = import_torch_state_dict(model, _abstract_variables(model), renamed)
    assert set(_flat(variables)) == set(_flat(reference))
    for path, value in _flat(reference).items():
        np.testing.assert_array_equal(_flat(variables)[path], value)


def test_import_reports_missing_unexpected_and_mismatched_keys(torch, twins):
    model = zoo.create_model("resnet18", input_shape=(32, 32, 3), num_classes=10)
    variables = _abstract_variables(model)
    # ResNet-34 into ResNet-18: the extra blocks are unexpected.
    resnet34 = twins.ResNet(twins.BasicBlock, (3, 4, 6, 3), num_classes=10).state_dict()
    with pytest.raises(ValueError, match=r"unexpected key\(s\): layer1\.2\.bn1\.bias.*another architecture"):
        import_torch_state_dict(model, variables, resnet34)
    # A truncated state dict: the missing keys are named.
    resnet18 = twins.ResNet(twins.BasicBlock, (2, 2, 2, 2), num_classes=10).state_dict()
    partial = {k: v for k, v in resnet18.items() if not k.startswith("layer4.1.")}
    with pytest.raises(ValueError, match=r"missing key\(s\): layer4\.1\.bn1\.bias"):
        import_torch_state_dict(model, variables, partial)
    # Another width: every conv is a shape mismatch, in torch's layout.
    narrow = twins.ResNet(twins.BasicBlock, (2, 2, 2, 2), num_classes=10, width=32).state_dict()
    with pytest.raises(ValueError, match=r"conv1\.weight is \(32, 3, 7, 7\), the model needs \(64, 3, 7, 7\)"):
        import_torch_state_dict(model, variables, narrow)
    # Another class count: the hint says how to import and then replace the head.
    imagenet = twins.ResNet(twins.BasicBlock, (2, 2, 2, 2), num_classes=1000).state_dict()
    with pytest.raises(ValueError, match=r"fc\.weight is \(1000, 512\).*num_classes=1000.*replace_head"):
        import_torch_state_dict(model, variables, imagenet)
    with pytest.raises(ValueError, match="supports the zoo's ResNet, VGG, AlexNet and DenseNet"):
        import_torch_state_dict(zoo.create_model("mlp"), {}, {})


def test_imagenet_weights_then_new_head(torch, twins):
    """The usual transfer: import 1000-class weights, then a fresh 10-class head."""
    model = zoo.create_model(
        "resnet18", input_shape=(32, 32, 3), num_classes=1000, width=16, **fast_compile("resnet18")
    )
    net = _random_twin(torch, lambda: twins.ResNet(twins.BasicBlock, (2, 2, 2, 2), 1000, width=16))
    variables = import_torch_state_dict("resnet18", _abstract_variables(model), net.state_dict())
    new_model, new_variables = finetune.replace_head(model, variables, 10, seed=3)
    assert new_model.num_classes == 10 and new_variables["params"]["fc"]["kernel"].shape == (128, 10)
    old, new = _flat(variables), _flat(new_variables)
    for path, value in new.items():
        if not path.startswith("params/fc/"):
            np.testing.assert_array_equal(value, old[path])  # backbone and BN statistics copied
    # The backbone computes the same features as the torch network.
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    features = jax.jit(lambda v, x: new_model.apply(v, x, method=new_model.forward_features))(new_variables, x)
    with torch.no_grad():  # torch's trunk: conv1 ... layer4, then the global average
        expected = net.maxpool(torch.relu(net.bn1(net.conv1(torch.from_numpy(x.transpose(0, 3, 1, 2))))))
        for i in range(4):
            expected = getattr(net, f"layer{i + 1}")(expected)
    np.testing.assert_allclose(
        features, expected.mean((2, 3)).numpy(), rtol=RTOL, atol=ATOL * float(expected.abs().max())
    )


# --------------------------------------------------------------------------------------
# Weights files: .pt / .pth (weights_only) and .safetensors
# --------------------------------------------------------------------------------------


def _small_resnet(twins):
    model = zoo.create_model(
        "resnet18", input_shape=(32, 32, 3), num_classes=4, stage_sizes=(1, 1), width=8, **fast_compile("resnet18")
    )
    return model, twins.ResNet(twins.BasicBlock, (1, 1), num_classes=4, width=8)


def test_weights_files_load_into_the_model(torch, twins, tmp_path):
    """A twin's state dict saved with torch.save (plain, and wrapped the way training
    scripts save checkpoints) and with safetensors gives the twin's outputs after import."""
    require_module("safetensors")
    import safetensors.torch

    model, build = _small_resnet(twins)
    net = _random_twin(torch, lambda: build)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pth")
    safetensors.torch.save_file(net.state_dict(), str(tmp_path / "net.safetensors"))
    for name in ("net.pt", "checkpoint.pth", "net.safetensors"):
        state_dict = load_torch_state_dict(tmp_path / name)
        assert set(state_dict) == set(net.state_dict()), name
        variables = import_torch_state_dict(model, _abstract_variables(model), state_dict)
        got, expected = _outputs(torch, model, variables, net)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * np.abs(expected).max(), err_msg=name)


class _NotWeights:
    """Pickled by torch.save as an arbitrary object: weights_only must refuse it."""


def test_weights_file_errors_are_one_line(torch, tmp_path):
    require_module("safetensors")
    with pytest.raises(FileNotFoundError, match=r"missing\.pt does not exist"):
        load_torch_state_dict(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle at all")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    torch.save({"weights": _NotWeights()}, tmp_path / "object.pth")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    (tmp_path / "net.bin").write_bytes(b"")
    cases = {
        "garbage.pt": r"garbage\.pt cannot be read as \.pt weights",
        "garbage.safetensors": r"garbage\.safetensors cannot be read as \.safetensors weights",
        "object.pth": r"object\.pth cannot be read as \.pth weights",  # weights_only refuses the object
        "list.pt": r"list\.pt holds no state dict",
        "net.bin": r"net\.bin: unknown weights format '\.bin'",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message) as error:
            load_torch_state_dict(tmp_path / name)
        assert "\n" not in str(error.value), name


def test_interop_does_not_import_the_training_engine_or_torch():
    """zoo.interop sits beside the models: importing it loads neither zoo.train nor torch."""
    code = (
        "import sys, zoo.interop; "
        "print(sorted(m for m in sys.modules if m.startswith(('zoo.train', 'zoo.bench', 'zoo.data')) "
        "or m == 'torch'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
