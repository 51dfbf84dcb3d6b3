"""Registry-wide tests: every registered model, at its reduced test size, must build,
run (plain and jit), give finite outputs of the right shape and dtype, and — if it learns
by gradients — pass a non-zero gradient to every parameter array in train mode. Models
that learn by another rule get their own contract tests. New models are covered for free.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.nn.inputs import is_multipart
from zoo.runtime import run_once
from zoo.train.steps import rule_arguments

ALL = zoo.list_models()
GRADIENT = [n for n in ALL if registry.get_spec(n).learns_by_gradient]
RULE = [n for n in ALL if registry.get_spec(n).learning not in ("gradient", "hand_wired")]
HAND_WIRED = [n for n in ALL if registry.get_spec(n).learning == "hand_wired"]
BATCH = 3
RNGS = ("dropout", "sample", "noise")


def _random_input(key, shape, dtype):
    if dtype.startswith("int"):
        return jax.random.randint(key, (BATCH, *shape), 0, 5).astype(dtype)
    return jax.random.uniform(key, (BATCH, *shape), jnp.float32)


@functools.lru_cache(maxsize=None)  # one init per model and worker, shared by the tests below
def _build(name):
    """The model at its test size, an input batch (a tuple of arrays for a model of
    several input parts, e.g. VQA's image and question), and its variables."""
    spec = registry.get_spec(name)
    model = zoo.create_model(name, **spec.test_config)
    shape = tuple(model.input_shape)
    key = jax.random.PRNGKey(0)
    if is_multipart(shape):
        keys = jax.random.split(key, len(shape))
        x = tuple(_random_input(k, tuple(s), d) for k, s, d in zip(keys, shape, spec.input_dtype))
    else:
        x = _random_input(key, shape, spec.input_dtype)
    keys = jax.random.split(jax.random.PRNGKey(1), 1 + len(RNGS))
    # As the engine initialises (zoo.runtime.run_once): one jit'd program, so every model's
    # init must trace.
    variables = run_once(lambda: model.init({"params": keys[0], **dict(zip(RNGS, keys[1:]))}, x))
    return spec, model, x, variables


def _main_output(y):
    """A model's output array; seq2seq models return a dict whose main array is "logits",
    autoencoders one with their reconstruction (values or logits)."""
    if not isinstance(y, dict):
        return y
    return next(y[k] for k in ("logits", "reconstruction", "reconstruction_logits") if k in y)


def _expected_output_shape(spec, model, x):
    config = {**spec.config, **spec.test_config}
    if spec.task == "binary_classification" or spec.name == "xor_sign_net":
        return (BATCH, 1)
    if spec.task == "segmentation":  # per-pixel logits
        return (*x.shape[:-1], config["num_classes"])
    for key in ("num_classes", "num_outputs"):
        if key in config:
            return (BATCH, config[key])
    if spec.task == "reconstruction":
        return x.shape
    if "output_frames" in config:  # frame forecasters: (B, T_in, H, W, C) -> (B, T_out, H, W, C)
        return (BATCH, config["output_frames"], *x.shape[2:])
    if hasattr(model, "output_shape"):  # sequence models: (T_out, V) logits or (T, F) reconstructions
        return (BATCH, *model.output_shape)
    raise AssertionError(f"the registry test does not know {spec.name}'s output shape: extend it")


def test_registry_holds_every_family():
    assert {registry.get_spec(n).family for n in ALL} >= {"perceptron", "cnn", "recurrent"}
    assert {"perceptron", "perceptron_rosenblatt", "mlp", "dff", "rbf", "xor_sigmoid_net", "xor_sign_net"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_model_info_is_complete(name):
    info = zoo.model_info(name)
    for key in ("family", "paper", "config", "input_shape", "input_dtype", "task", "learning"):
        assert info[key] not in (None, ""), key
    assert info["learns_by_gradient"] == (info["learning"] == "gradient")
    assert info["input_shape"] == tuple(info["config"]["input_shape"])


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_dtype_finite_and_jit(name):
    spec, model, x, variables = _build(name)
    y = _main_output(model.apply(variables, x))
    assert y.shape == _expected_output_shape(spec, model, x[0] if isinstance(x, tuple) else x)
    assert y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y)))
    y_jit = jax.jit(lambda v, x: _main_output(model.apply(v, x)))(variables, x)
    np.testing.assert_allclose(y_jit, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_wrong_input_shape_names_expected_shape(name):
    _, model, x, variables = _build(name)
    first, shape = (x[0], model.input_shape[0]) if isinstance(x, tuple) else (x, model.input_shape)
    bad = jnp.zeros(first.shape[:-1] + (first.shape[-1] + 1,), first.dtype)
    expected = ", ".join(str(d) for d in shape)
    with pytest.raises(ValueError, match=f"expects .*\\(B, {expected}\\)"):
        model.apply(variables, (bad, *x[1:]) if isinstance(x, tuple) else bad)


@pytest.mark.parametrize("name", GRADIENT)
def test_every_parameter_receives_a_gradient(name):
    _, model, x, variables = _build(name)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    mutable = [k for k in state if k != "constants"]
    rngs = dict(zip(RNGS, jax.random.split(jax.random.PRNGKey(2), len(RNGS))))

    def loss(p):
        out = model.apply({"params": p, **state}, x, train=True, rngs=rngs, mutable=mutable)
        y, _ = out  # mutable=[] still returns (outputs, state)
        y = _main_output(y)
        # Random weights so no parameter's contributions cancel out.
        return jnp.sum(y * jax.random.normal(jax.random.PRNGKey(3), y.shape))

    grads = jax.jit(jax.grad(loss))(params)  # jit: eager dispatch of deep nets is slow
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert bool(jnp.all(jnp.isfinite(g))), jax.tree_util.keystr(path)
        assert float(jnp.abs(g).max()) > 0, f"{name}: no gradient reaches {jax.tree_util.keystr(path)}"


@pytest.mark.parametrize("name", GRADIENT)
def test_features_and_head_compose_to_the_forward_pass(name):
    _, model, x, variables = _build(name)
    if not hasattr(model, "forward_features"):
        pytest.fail(f"{name}: gradient models split forward_features / head (timm contract)")
    h = model.apply(variables, x, method=model.forward_features)
    y = _main_output(model.apply(variables, h, method=model.head))
    np.testing.assert_allclose(y, _main_output(model.apply(variables, x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", RULE)
def test_learning_rule_contract(name):
    """A non-gradient rule is a pure, jit-able function of (variables, x, t) that keeps the
    variables' structure, moves the weights on an error and ignores masked rows."""
    spec, model, x, variables = _build(name)
    t = 1.0 - (model.apply(variables, x)[:, 0] >= 0.5).astype(jnp.float32)  # all wrong
    # What the training step would give it besides the batch (the module, a key).
    extra = rule_arguments(spec.learning_rule, model, jax.random.PRNGKey(4))
    rule = jax.jit(functools.partial(spec.learning_rule, **extra))
    after = rule(variables, x, t)
    chex.assert_trees_all_equal_shapes_and_dtypes(after, variables)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), after["params"], variables["params"])
    assert any(jax.tree.leaves(changed))
    unchanged = rule(variables, x, t, mask=jnp.zeros(BATCH))
    chex.assert_trees_all_equal(unchanged, variables)


@pytest.mark.parametrize("name", HAND_WIRED)
def test_hand_wired_weights_do_not_depend_on_the_key(name):
    spec, model, x, variables = _build(name)
    other = model.init(jax.random.PRNGKey(123), x)
    chex.assert_trees_all_equal(other, variables)
    assert spec.learning_rule is None


def test_unknown_model_lists_near_matches():
    with pytest.raises(ValueError, match=r"unknown model 'mlpp'.*Did you mean: mlp"):
        zoo.create_model("mlpp")
    with pytest.raises(ValueError, match="unknown model"):
        zoo.model_info("resnet9000")


def test_bad_overrides_raise_value_error():
    with pytest.raises(ValueError, match=r"'hiden_sizes'.*Did you mean: hidden_sizes"):
        zoo.create_model("mlp", hiden_sizes=(3,))
    with pytest.raises(ValueError, match="bad config for model 'mlp'.*positive"):
        zoo.create_model("mlp", hidden_sizes=(0,))
    with pytest.raises(ValueError, match="unknown activation 'rellu'.*relu"):
        zoo.create_model("mlp", activation="rellu")
    with pytest.raises(ValueError, match="unknown initializer"):
        zoo.create_model("dff", kernel_init="kaiming")


def test_list_models_pattern_and_family():
    assert zoo.list_models("xor_*") == ["xor_sigmoid_net", "xor_sign_net"]
    assert "mlp" in zoo.list_models(family="perceptron")
    assert zoo.list_models(family="no-such-family") == []


def test_register_rejects_incomplete_models():
    import flax.linen as nn

    class NoDefault(nn.Module):
        width: int  # no default
        input_shape: tuple = (2,)

    class NoInputShape(nn.Module):
        width: int = 3

    with pytest.raises(TypeError, match="width needs a default"):
        registry.register_model("tmp_bad", NoDefault, family="x", paper="x", task="regression")
    with pytest.raises(TypeError, match="input_shape field"):
        registry.register_model("tmp_bad", NoInputShape, family="x", paper="x", task="regression")
    with pytest.raises(TypeError, match="Linen module class"):
        registry.register_model("tmp_bad", family="x", paper="x", task="regression")(lambda n: n)
    with pytest.raises(ValueError, match="unknown task 'reconstructing'"):
        registry.register_model("tmp_bad", NoDefault, family="x", paper="x", task="reconstructing")
    with pytest.raises(ValueError, match="unknown config key 'widht'"):
        registry.register_model(
            "tmp_bad", NoInputShape, family="x", paper="x", task="regression", defaults={"widht": 2}
        )
    with pytest.raises(ValueError, match="learning_rule"):
        registry.register_model("tmp_bad2", family="x", paper="x", task="regression", learning="rosenblatt")
    assert not zoo.list_models("tmp_bad*")


def test_every_registered_task_is_one_the_engine_trains():
    from zoo.tasks import TASKS

    for name in ALL:
        assert registry.get_spec(name).task in TASKS, name


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_sizes": "abc"}, "hidden_sizes must be a tuple like"),
        ({"hidden_sizes": 64}, "hidden_sizes must be a tuple like"),
        ({"hidden_sizes": (64.5,)}, r"hidden_sizes\[0\] must be an integer, got float 64.5"),
        ({"batch_norm": "maybe"}, "batch_norm must be True or False"),
        ({"dropout_rate": "high"}, "dropout_rate must be a finite number"),
        ({"num_outputs": 2.5}, "num_outputs must be an integer"),
        ({"dropout": 0.1}, "unknown config key 'dropout'.*dropout_rate"),
    ],
)
def test_create_model_names_the_option_and_what_it_got(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("mlp", **overrides)


def test_create_model_converts_lists_and_ints():
    model = zoo.create_model("mlp", hidden_sizes=[8, 4], dropout_rate=0)  # as JSON configs give them
    assert model.hidden_sizes == (8, 4) and isinstance(model.dropout_rate, float)


def test_adapt_config_sets_input_and_outputs():
    assert registry.adapt_config("mlp", (4,), 3) == {"input_shape": (4,), "num_outputs": 3}
    assert registry.adapt_config("perceptron", (4,), 2) == {"input_shape": (4,)}
