"""Property-based probes (hypothesis): whatever a user passes to `create_model`, the
optimizer factory, the dataset constructors or train.py's options, the answer is a working
object or one clear ValueError (exit code 2 at the CLI) — never another exception, never
a traceback."""

import importlib.util
import inspect
import pathlib

import numpy as np
from conftest import require_module

hypothesis = require_module("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import zoo  # noqa: E402
from zoo import optim, registry  # noqa: E402
from zoo.data import catalog, load_dataset  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Values of every kind a config key may be handed: from the CLI's literal parser or a notebook.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.tuples(scalars, scalars))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(name=st.sampled_from(zoo.list_models()), data=st.data())
def test_create_model_builds_or_raises_value_error(name, data):
    config = registry.get_spec(name).config
    key = data.draw(st.one_of(st.sampled_from(sorted(config)), st.text(min_size=1, max_size=10)))
    value = data.draw(values)
    try:
        zoo.create_model(name, **{key: value})
    except ValueError:
        pass


@SETTINGS
@given(name=st.sampled_from(optim.list_optimizers()), data=st.data())
def test_optimizer_factory_builds_or_raises_value_error(name, data):
    keys = sorted(optim.OPTIMIZERS[name].defaults) + ["clip_norm", "clip_value", "l1", "l2"]
    hyper = data.draw(st.dictionaries(st.sampled_from(keys), values, max_size=3))
    learning_rate = data.draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text()))
    try:
        optim.create(name, learning_rate, num_examples=100, **hyper)
    except ValueError:
        pass


GENERATED = ["xor", "circles", "copy", "reverse", "adding_problem", "sentiment"]


@SETTINGS
@given(name=st.sampled_from(GENERATED), data=st.data())
def test_dataset_constructors_build_or_raise_value_error(name, data):
    loader = catalog.DATASETS[name]
    options = sorted(set(inspect.signature(loader).parameters) - {"seed", "data_dir"})
    key = data.draw(st.sampled_from(options)) if options else "seed"
    # Sizes that fit in memory (tests/data/test_base.py: larger ones are refused up front).
    value = data.draw(
        st.one_of(scalars.filter(lambda v: not isinstance(v, int) or abs(v) <= 10**4), st.integers(0, 64))
    )
    try:
        dataset = load_dataset(name, **{key: value})
    except ValueError:
        return
    for _, x, y in dataset.splits():
        assert len(x) == len(y)
        if np.issubdtype(np.asarray(x).dtype, np.floating):
            assert np.isfinite(x).all()


_spec = importlib.util.spec_from_file_location("train_cli_props", ROOT / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

OPTIONS = {
    "--lr": st.one_of(st.floats(-1, 1), st.sampled_from(["0", "-0", "nan", "inf", "1e-3"])),
    "--epochs": st.integers(-2, 2),
    "--batch-size": st.integers(-2, 300),
    "--validation-fraction": st.floats(-0.5, 1.5),
    "--set": st.sampled_from(
        [
            "hidden_sizes=(4,)",
            "hidden_sizes=()",
            "hidden_sizes=(0,)",
            "activation=nope",
            "dropout_rate=1.5",
            "dropout_rate=0.5",
            "num_outputs=-1",
            "batch_norm=1",
        ]
    ),
    "--opt": st.sampled_from(["beta1=0.5", "beta2=2", "eps=0", "eps=1e-9", "nothing=1", "beta1=[1]"]),
    "--optimizer": st.sampled_from(["sgd", "adam", "momentum", "rmsprop", "nope"]),
    "--schedule": st.sampled_from(["constant", "cosine", "step", "bogus"]),
    "--patience": st.integers(-1, 2),
    "--target": st.floats(-1, 2),
    "--ema": st.one_of(st.floats(-1, 2), st.sampled_from(["0", "1", "nan", "0.9"])),
    "--accumulate": st.integers(-1, 5),
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(options=st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.just(None), min_size=1, max_size=3), data=st.data())
def test_train_cli_trains_or_says_one_line(options, data, capsys, tmp_path_factory):
    args = ["--no-progress", "--dataset", "xor", "--model", "mlp"]
    for flag in options:
        args += [flag, str(data.draw(OPTIONS[flag]))]
    if "--epochs" not in options:
        args += ["--epochs", "1"]
    workdir = tmp_path_factory.mktemp("run")
    try:
        code = train.run(args + ["--workdir", str(workdir)])
    except SystemExit as e:  # argparse: a value of the wrong type for its flag
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), (args, err)
    if code == 2 and err and not err[0].startswith("usage:"):
        assert len(err) == 1 and err[0].startswith("error:"), (args, err)
