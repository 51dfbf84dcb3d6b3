"""DenseNets (ImageNet DenseNet-BC and CIFAR DenseNet-BC-100): exact parameter counts against
DESIGN.md's reference figures (abstract evaluation, nothing allocated), growth rate,
shapes and input checks.

Counts are trainable parameters (the ``params`` collection: conv kernels, biases, BN scale
and bias, dense). BN running statistics (``batch_stats``) are not counted."""

import pytest
from cnn_testing import abstract, check_cifar_maps, check_shapes_at_224, check_wrong_input_shapes_raise, count

import zoo


REFERENCE = {  # DESIGN.md "Reference figures"
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet_bc_100": 769_162,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count_equals_reference_figure(name):
    _, variables = abstract(zoo.create_model(name))
    assert count(variables["params"]) == REFERENCE[name]


# 224x224 shapes: logits, pooled features and the last conv map (for CAM).
IMAGENET_FEATURES = {"densenet121": (7, 7, 1024), "densenet169": (7, 7, 1664), "densenet201": (7, 7, 1920)}


@pytest.mark.parametrize("name", sorted(IMAGENET_FEATURES))
def test_output_feature_and_map_shapes_at_224(name):
    check_shapes_at_224(name, IMAGENET_FEATURES[name])


@pytest.mark.parametrize("name,maps", [("densenet_bc_100", (8, 8, 342))])
def test_cifar_networks_keep_32x32_down_to_8x8(name, maps):
    check_cifar_maps(name, maps)


@pytest.mark.parametrize("name", ["densenet121", "densenet_bc_100"])
def test_wrong_input_shape_raises_naming_expected_shape(name):
    check_wrong_input_shapes_raise(name)


@pytest.mark.parametrize(
    "name,overrides", [("densenet121", {"growth_rate": 0}), ("densenet_bc_100", {"compression": 0.0})]
)
def test_bad_config_raises_value_error(name, overrides):
    with pytest.raises(ValueError, match=f"bad config for model '{name}'"):
        zoo.create_model(name, **overrides)


def test_densenet_bc_100_has_800032_parameters_at_100_classes():
    _, variables = abstract(zoo.create_model("densenet_bc_100", num_classes=100))
    assert count(variables["params"]) == 800_032


def test_growth_rate_is_configurable():
    _, v12 = abstract(zoo.create_model("densenet_bc_100"))
    _, v24 = abstract(zoo.create_model("densenet_bc_100", growth_rate=24))
    assert count(v24["params"]) > count(v12["params"])
    assert v24["params"]["classifier"]["kernel"].shape[0] == 2 * v12["params"]["classifier"]["kernel"].shape[0]
