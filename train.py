"""Train any registered zoo model on any zoo dataset.

python train.py                                   # MLP on the embedded digits set
python train.py --model dff --epochs 40 --set dropout_rate=0.2
python train.py --model mlp --dataset fashion_mnist --data-dir /usr/share/datasets/fashion-mnist
python train.py --workdir runs/a --resume         # continue an interrupted run
python train.py --model resnet20 --init-from runs/a --trainable fc   # fine-tune a head
python train.py --model lenet5 --dataset fashion_mnist --pretrained fashion_mnist --save-pretrained out/lenet5
python train.py --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0   # and id 1
python train.py --config runs/a/config.json --workdir runs/b --epochs 5   # rerun a, one change
python train.py --ema 0.999 --accumulate 4 --workdir runs/c   # EMA weights, 4 micro-batches per update
python train.py --workdir runs/d --tb-histograms --profile runs/d/profile   # tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

# TrainConfig field -> the command-line options that set it (a field not listed: the option
# of its own name). With --config, the options given on the command line override the
# file's settings (dict fields key by key).
FIELD_OPTIONS = {
    "model": ("model",),
    "dataset": ("dataset",),
    "data_dir": ("data_dir",),
    "dataset_kwargs": ("data",),
    "model_overrides": ("set",),
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "optimizer": ("optimizer",),
    "learning_rate": ("lr",),
    "optimizer_kwargs": ("opt", "schedule", "clip_norm", "l1", "l2"),
    "augment": ("augment",),
    "eda": ("eda",),
    "init": ("init",),
    "seed": ("seed",),
    "validation_fraction": ("validation_fraction",),
    "patience": ("patience",),
    "target": ("target",),
    "num_devices": ("num_devices",),
    "init_from": ("init_from",),
    "reset_head": ("reset_head",),
    "trainable": ("trainable", "freeze"),  # either one replaces both
    "frozen": ("freeze", "trainable"),
    "ema": ("ema",),
    "accumulate": ("accumulate",),
}


def build_parser() -> argparse.ArgumentParser:
    import zoo
    from zoo.data import list_datasets
    from zoo.optim import list_optimizers

    defaults = zoo.train.TrainConfig()
    epilog = (
        "models: "
        + ", ".join(zoo.list_models())
        + "\ndatasets: "
        + ", ".join(list_datasets())
        + "\noptimizers: "
        + ", ".join(list_optimizers())
        + "\n\n`python -c \"import zoo; print(zoo.model_info('mlp'))\"` shows a model's config."
    )
    p = argparse.ArgumentParser(
        description="Train a zoo model.", epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="start from a config file: a run's config.json, YAML, or a Python file whose "
        "get_config() returns an ml_collections.ConfigDict; options given here override it",
    )
    p.add_argument("--model", default=defaults.model, help="registered model name (default %(default)s)")
    p.add_argument("--dataset", default=defaults.dataset, help="dataset name (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder with the dataset's files (IDX or TFDS)")
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option, e.g. --data image_size=28 (repeatable; "
        "zoo.data.describe_dataset(name) lists a dataset's options)",
    )
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="1 = stochastic, N = mini-batch, >= train size = full-batch gradient descent",
    )
    p.add_argument("--optimizer", default=defaults.optimizer)
    p.add_argument("--lr", type=float, default=defaults.learning_rate, help="learning rate")
    p.add_argument("--schedule", default=None, help="constant, step, cosine, warmup, warmup_cosine")
    p.add_argument("--clip-norm", type=float, default=None, help="clip gradients to this global norm")
    p.add_argument("--l1", type=float, default=0.0, help="L1 penalty lambda (cost + lambda/(2m) sum|w|)")
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty lambda (cost + lambda/(2m) sum w^2)")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="optimizer hyper-parameter, e.g. --opt momentum=0.9 (repeatable)",
    )
    p.add_argument(
        "--augment",
        default=None,
        metavar="OPS",
        help="image augmentation of training batches, e.g. flip,crop=4,rotate=15 (also vflip, scale, translate, noise)",
    )
    p.add_argument(
        "--eda", type=int, default=0, metavar="N", help="add N EDA copies of each training text (text datasets)"
    )
    p.add_argument(
        "--whiten", choices=("zca", "pca"), default=None, help="whiten inputs with training-split statistics"
    )
    p.add_argument("--init", default=None, help="kernel initializer, e.g. he_normal, xavier_uniform")
    p.add_argument(
        "--dtype",
        default=defaults.dtype,
        choices=("float32", "bfloat16", "float16"),
        help="compute dtype; parameters, optimizer state, loss and batch-norm statistics stay "
        "float32 (float16 adds dynamic loss scaling); default %(default)s",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    p.add_argument("--patience", type=int, default=None, help="early stopping patience (epochs)")
    p.add_argument("--target", type=float, default=None, help="stop when the validation metric reaches it")
    p.add_argument("--num-devices", type=int, default=None, help="data-parallel devices (default all)")
    p.add_argument("--workdir", default=None, help="where config, metrics and checkpoints go")
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="WORKDIR_OR_CKPT",
        help="start from the weights of an earlier run: its --workdir (latest epoch) "
        "or one checkpoint, WORKDIR/checkpoints/N; the output layer is re-initialised "
        "when the class count differs (transfer learning, see zoo.train.finetune)",
    )
    p.add_argument(
        "--pretrained",
        default=None,
        metavar="SOURCE",
        help="start from pretrained weights: a zoo.save_pretrained folder, a shipped dataset name "
        "(e.g. fashion_mnist for lenet5), a Hugging Face Hub id user/repo or torchvision:NAME_OR_PATH "
        "(see zoo.pretrained); with another class count add --reset-head",
    )
    p.add_argument(
        "--reset-head",
        action="store_true",
        help="with --init-from or --pretrained: re-initialise the output layer even when its size fits",
    )
    p.add_argument(
        "--save-pretrained",
        default=None,
        metavar="DIR",
        help="after training, write the weights with zoo.save_pretrained to DIR "
        "(model.safetensors, config.json, a model card with this command and the test metrics)",
    )
    frozen = p.add_mutually_exclusive_group()
    frozen.add_argument(
        "--freeze",
        default=None,
        metavar="PATTERN[,PATTERN]",
        help="parameters to keep fixed, by path pattern, the rest trained; e.g. "
        "'layers_0_*,conv1,bn1' (paths as in zoo.train.finetune.variable_paths(params); "
        "a pattern matches a path or its leading part)",
    )
    frozen.add_argument(
        "--trainable",
        default=None,
        metavar="PATTERN[,PATTERN]",
        help="parameters to train, by path pattern, the rest frozen; e.g. 'fc' (ResNet head) or 'layers_3_*,fc'",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config override, e.g. --set hidden_sizes=(64,64) (repeatable)",
    )
    dist = p.add_argument_group(
        "multi-process data parallelism",
        "Every process runs this same command (its own --process-id) on the same data and "
        "seed; the global batch is split over the devices of all processes. Only process 0 "
        "prints and writes config.json / metrics.jsonl; all processes take part in checkpoint "
        "writes, so --workdir must be one folder they all see.",
    )
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run; alone, jax.distributed.initialize() detects "
        "the coordinator, process count and id (SLURM, Open MPI, TPU pods)",
    )
    dist.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="address process 0 listens on, e.g. 127.0.0.1:12355 (implies --distributed)",
    )
    dist.add_argument("--num-processes", type=int, default=None, help="how many processes take part")
    dist.add_argument("--process-id", type=int, default=None, help="this process's rank, 0 .. N-1")
    dist.add_argument(
        "--distributed-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="how long to wait for every process to join (default %(default)s)",
    )
    engine = p.add_argument_group("engine")
    engine.add_argument(
        "--ema",
        type=float,
        default=None,
        metavar="DECAY",
        help="keep an exponential moving average of the weights, e.g. 0.999; it is what "
        "validation, test and the saved variables use",
    )
    engine.add_argument(
        "--accumulate",
        type=int,
        default=defaults.accumulate,
        metavar="K",
        help="average the gradients of K batches into one update (optax.MultiSteps); "
        "the effective batch is K x --batch-size",
    )
    engine.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write TensorBoard logs into --workdir (default: on when tensorboardX is installed)",
    )
    engine.add_argument("--tb-histograms", action="store_true", help="log histograms of the parameters each epoch")
    engine.add_argument(
        "--tb-images", type=int, default=0, metavar="N", help="log N training images of each epoch's first batch"
    )
    engine.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="write a jax.profiler trace of a few train steps into DIR (view in TensorBoard or Perfetto)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    runtime = p.add_argument_group("runtime (zoo.runtime)")
    runtime.add_argument(
        "--no-compilation-cache",
        action="store_true",
        help="do not keep compiled programs in JAX's persistent cache ($XDG_CACHE_HOME/zoo/jax, "
        "default ~/.cache/zoo/jax; ZOO_COMPILATION_CACHE=DIR moves it, =0 turns it off), "
        "which makes a second run of the same model and shapes start in seconds",
    )
    runtime.add_argument(
        "--no-tune-cpu",
        action="store_true",
        help="leave glibc's allocator as it is (by default it keeps freed memory for reuse, "
        "sparing XLA:CPU's per-step page faults; the process keeps its peak memory)",
    )
    return p


def given_options(argv: list[str] | None) -> set[str]:
    """The options (argparse dests) set on the command line ``argv``, defaults aside."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def resolve_config(args, argv: list[str] | None):
    """The run's TrainConfig: the command line's options, or with ``--config`` the file's
    settings overridden by the options given on the command line."""
    import zoo
    from zoo.cli import parse_assignments

    optimizer_kwargs = parse_assignments(args.opt, "--opt")
    for key, value in (("schedule", args.schedule), ("clip_norm", args.clip_norm)):
        if value is not None:
            optimizer_kwargs[key] = value
    if args.l1:
        optimizer_kwargs["l1"] = args.l1
    if args.l2:
        optimizer_kwargs["l2"] = args.l2
    settings = dict(
        model=args.model,
        dataset=args.dataset,
        data_dir=args.data_dir,
        dataset_kwargs=parse_assignments(args.data, "--data"),
        model_overrides=parse_assignments(args.set, "--set"),
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        optimizer_kwargs=optimizer_kwargs,
        augment=args.augment,
        eda=args.eda,
        whiten=args.whiten,
        init=args.init,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        patience=args.patience,
        target=args.target,
        num_devices=args.num_devices,
        init_from=args.init_from,
        reset_head=args.reset_head and args.pretrained is None,
        trainable=args.trainable or (),
        frozen=args.freeze or (),
        ema=args.ema,
        accumulate=args.accumulate,
        dtype=args.dtype,
    )
    if args.config is None:
        return zoo.train.TrainConfig(**settings)
    given = given_options(argv)
    overrides = {k: v for k, v in settings.items() if given & set(FIELD_OPTIONS.get(k, (k,)))}
    return zoo.train.load_config(args.config, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import jax

    import zoo
    from zoo import runtime

    if not args.no_tune_cpu:  # before the first computation starts XLA's threads
        runtime.tune_cpu()
    cache_dir = None if args.no_compilation_cache else runtime.enable_compilation_cache()

    explicit = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(v is not None for v in explicit):
        zoo.train.sharding.initialize_distributed(*explicit, timeout_seconds=args.distributed_timeout)
    primary = jax.process_index() == 0  # the one process that prints
    config = resolve_config(args, argv)
    if primary:
        print("config:", json.dumps(dataclasses.asdict(config), default=str), flush=True)
        print(f"devices: {jax.devices()} ({jax.process_count()} process(es))", flush=True)
        if cache_dir is not None:
            print(f"compilation cache: {cache_dir}", flush=True)
    initial_variables = None
    if args.pretrained is not None:
        if args.init_from is not None:
            raise ValueError("give --pretrained or --init-from, not both")
        from zoo.pretrained import load_pretrained, without

        pretrained_model, initial_variables = load_pretrained(args.pretrained, config.model)
        if args.reset_head:  # the output layer keeps its fresh initialisation
            head = zoo.finetune.head_paths(pretrained_model)
            initial_variables = without(initial_variables, head)
        if primary:
            print(f"pretrained: {args.pretrained}", flush=True)
    with runtime.compile_stats() as compiled:
        result = zoo.fit(
            config.model,
            None,
            config=config,
            workdir=args.workdir,
            resume=args.resume,
            progress=primary and not args.no_progress,
            tensorboard=args.tensorboard,
            log_histograms=args.tb_histograms,
            log_images=args.tb_images,
            profile=args.profile,
            initial_variables=initial_variables,
        )
    if args.save_pretrained and primary:
        command = "python train.py " + " ".join(sys.argv[1:] if argv is None else argv)
        folder = zoo.save_pretrained(
            result.variables,
            config.model,
            result.model,
            args.save_pretrained,
            dataset=config.dataset,
            metrics=result.test_metrics,
            command=command,
        )
        print(f"saved pretrained weights to {folder}")
    if not primary:
        return 0
    last = result.history[-1] if result.history else {}
    print(f"stopped: {result.stop_reason} after {len(result.history)} epochs")
    if last:
        print("last epoch:", ", ".join(f"{k}={v:.4f}" for k, v in last.items() if isinstance(v, float)))
    if result.test_metrics:
        print("test:", ", ".join(f"{k}={v:.4f}" for k, v in result.test_metrics.items()))
    print(compiled.summary())
    return 0


def run(argv: list[str] | None = None) -> int:
    """`main` with user errors turned into one ``error:`` line on stderr: exit code 2 for
    a bad option, data, config or work dir, 130 after Ctrl-C (what was saved is said)."""
    import logging

    from zoo.train.checkpoint import CheckpointError

    # orbax logs through absl before raising; the CLI reports each failure once, itself.
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    try:
        return main(argv)
    except (ValueError, FileNotFoundError, FloatingPointError, CheckpointError) as e:
        # User errors (bad name, bad config, missing data, diverged run): one clear line.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no: read-only, full, not a folder
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # zoo.train.TrainingInterrupted says what was saved
        print(f"\n{e or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
