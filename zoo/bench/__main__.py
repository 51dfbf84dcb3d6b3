"""``python -m zoo.bench``: benchmark one model or the standard suite.

    python -m zoo.bench --model mlp --compare torch,flax
    python -m zoo.bench --model lstm --batch-size 32 --seq-len 256 --dtype bfloat16 --json out.json
    python -m zoo.bench --all --compare torch,flax      # writes benchmarks/results-<device>.md
    python -m zoo.bench --model mlp --profile /tmp/trace  # + a jax.profiler trace of the step
    python -m zoo.bench --sweep lstm-seq-len --compare torch  # scaling: benchmarks/sweeps-<device>.md + PNG
    python -m zoo.bench --suite gpu                       # the GPU suite: benchmarks/results-gpu.md

Exit status: 0 when every benchmark ran or is absent, 1 when one failed, 2 on a usage
error (unknown model, bad option).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import sys

import jax

from zoo import bench, registry, runtime
from zoo.bench import gpu_suite, harness, sweep
from zoo.bench.suite import DTYPES, MODES
from zoo.cli import parse_assignments


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo.bench",
        description="Time a zoo model's train (or forward) step on the default JAX device, "
        "optionally side by side with PyTorch and Flax stock-layer versions.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", help="suite entry or registered model name (--list shows the suite)")
    what.add_argument(
        "--all", action="store_true", help="run the standard suite and write benchmarks/results-<device>.md"
    )
    what.add_argument("--list", action="store_true", help="list the suite's entries and exit")
    what.add_argument(
        "--sweep",
        metavar="NAME",
        help=f"scaling sweep(s), comma-separated, or all: {', '.join(s.name for s in sweep.SWEEPS)}; "
        "writes benchmarks/sweeps-<device>.md and a PNG per sweep",
    )
    what.add_argument(
        "--suite", choices=tuple(gpu_suite.SUITES), help="a device suite (gpu: writes benchmarks/results-gpu.md)"
    )
    p.add_argument("--values", help="--sweep: comma-separated axis values instead of the sweep's own")
    p.add_argument("--dry-run", action="store_true", help="--suite: list its runs and exit")
    p.add_argument("--batch-size", type=int, help="examples per step (default: the entry's)")
    p.add_argument("--seq-len", type=int, help="sequence length of sequence entries")
    p.add_argument("--image-size", type=int, help="image side of image entries")
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="bfloat16: bf16 compute on float32 parameters, as train.py --dtype (the torch twin runs all in bf16)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="train",
        help="train: the engine's train step incl. the SGD update; forward: inference apply",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="timed steps per contender per round (default: enough for "
        f"~{harness.AUTO_BLOCK_S} s, {harness.AUTO_MIN_STEPS} to {harness.AUTO_MAX_STEPS})",
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; ratios need >= 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling (default 2)")
    p.add_argument("--compare", default="", help=f"comma-separated references: {','.join(bench.REFERENCES)}")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model config override, a Python literal (repeatable), e.g. hidden_sizes=(64,64)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--results-dir", default="benchmarks", help="where --all writes its Markdown (default benchmarks)")
    p.add_argument(
        "--no-tune-cpu",
        action="store_true",
        help="leave glibc's allocator as it is; by default zoo.runtime.tune_cpu() keeps freed "
        "memory for reuse (no per-step page faults), for every contender alike: they share the process",
    )
    p.add_argument(
        "--no-compilation-cache",
        action="store_true",
        help="no persistent compilation cache (zoo.runtime); with it, setup programs load from "
        "the cache, while the timed compile of each contender's step always bypasses it",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="write a jax.profiler trace of a few zoo steps (after the warmup) into DIR, "
        "viewable in TensorBoard or Perfetto (with --all: one trace per entry, DIR/<entry>)",
    )
    return p


def _parse_compare(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in bench.REFERENCES]
    if unknown:
        raise ValueError(f"unknown --compare reference(s) {', '.join(unknown)}; valid: {', '.join(bench.REFERENCES)}")
    return names


def _profile_dir(root: str, entry: str, every_entry: bool) -> str:
    return str(pathlib.Path(root) / entry) if every_entry else root


def _list_suite() -> str:
    present = set(registry.list_models())
    lines = ["| benchmark | model | status | torch twin | flax stock | description |", "|---|---|---|---|---|---|"]
    for e in bench.SUITE:
        lines.append(
            f"| {e.name} | {e.model} | {'registered' if e.model in present else 'absent'} "
            f"| {e.torch_twin or '–'} | {'yes' if e.flax_stock else '–'} | {e.description} |"
        )
    return "\n".join(lines)


def _runtime_note(tuned: dict, cache_dir) -> str:
    allocator = (
        "glibc malloc tuned (zoo.runtime.tune_cpu: " + ", ".join(f"{k}={v}" for k, v in tuned.items()) + ")"
        if tuned
        else "allocator as the system left it"
    )
    cache = (
        "persistent compilation cache on for setup programs (the timed compiles bypass it)"
        if cache_dir
        else "no persistent compilation cache"
    )
    return f"{allocator}; {cache}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.list:
        print(_list_suite())
        return 0
    tuned = {} if args.no_tune_cpu else runtime.tune_cpu()  # before the first computation
    cache_dir = None if args.no_compilation_cache else runtime.enable_compilation_cache()
    if args.sweep:
        return _run_sweeps(args, argv)
    if args.suite:
        return _run_device_suite(args, argv, _runtime_note(tuned, cache_dir))
    try:
        if not (args.model or args.all):
            raise ValueError("give --model NAME or --all")
        compare = _parse_compare(args.compare)
        overrides = parse_assignments(args.set, "--set")
        entries = bench.SUITE if args.all else (bench.resolve_entry(args.model),)
        results = []
        for i, entry in enumerate(entries, 1):
            print(f"[{i}/{len(entries)}] {entry.name} ...", file=sys.stderr, flush=True)
            workload = entry.workload(
                batch_size=args.batch_size,
                seq_len=args.seq_len,
                image_size=args.image_size,
                dtype=args.dtype,
                mode=args.mode,
                strict=not args.all,
            )
            results.append(
                bench.run_entry(
                    entry,
                    workload,
                    overrides=overrides,
                    compare=compare,
                    steps=args.steps,
                    rounds=args.rounds,
                    warmup=args.warmup,
                    profile=None if args.profile is None else _profile_dir(args.profile, entry.name, args.all),
                )
            )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    dtypes = ("float32", "bfloat16") if args.dtype == "bfloat16" else ("float32",)
    runtime_note = _runtime_note(tuned, cache_dir)
    return _report(results, args, argv, compare, dtypes, runtime_note, write_results=args.all)


def _report(results, args, argv, compare, dtypes, runtime_note: str, *, write_results: bool) -> int:
    """Print the Markdown report (and write it to ``results-<platform>.md`` under
    ``--results-dir`` when ``write_results``; the JSON to ``--json``); 1 if a run failed."""
    metadata = bench.run_metadata(
        "python -m zoo.bench " + shlex.join(argv),
        compare=compare,
        steps=args.steps,
        rounds=args.rounds,
        warmup=args.warmup,
        dtypes=dtypes,
        runtime=runtime_note,
    )
    text = bench.report_markdown(results, metadata)
    print(text)
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(bench.report_json(results, metadata), indent=2) + "\n")
    if write_results:
        out = pathlib.Path(args.results_dir) / f"results-{jax.devices()[0].platform}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(merge_report(out.read_text() if out.exists() else "", text))
        print(f"wrote {out}", file=sys.stderr)
    for r in results:
        if r.status == "failed":
            print(f"error: {r.entry} failed: {r.reason}\n{r.traceback}", file=sys.stderr)
    return 1 if any(r.status == "failed" for r in results) else 0


REPORT_START, REPORT_END = "<!-- bench-report:start -->", "<!-- bench-report:end -->"


def merge_report(document: str, report: str) -> str:
    """``document`` (a results file) with ``report`` on top, in place of the report between
    its markers; all else it holds (sections written there by hand) is kept below."""
    block = f"{REPORT_START}\n{report.rstrip()}\n{REPORT_END}\n"
    start, end = document.find(REPORT_START), document.find(REPORT_END)
    if 0 <= start < end:
        document = document[:start] + document[end + len(REPORT_END) :].lstrip("\n")
    return block + ("\n" + document if document else "")


def _parse_values(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--values takes comma-separated integers, got {text!r}") from None


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _run_sweeps(args, argv: list[str]) -> int:
    """``--sweep NAME[,NAME|all]``: each sweep's table printed and written, with its PNG."""
    try:
        names = [n.strip() for n in args.sweep.split(",") if n.strip()]
        sweeps = sweep.SWEEPS if names == ["all"] else tuple(sweep.get_sweep(n) for n in names)
        if args.json or args.profile:
            raise ValueError("--json and --profile do not apply to --sweep (it writes benchmarks/sweeps-<device>.md)")
        values = _parse_values(args.values) if args.values else None
        compare = _parse_compare(args.compare)
        overrides = parse_assignments(args.set, "--set")
        done = []
        for s in sweeps:
            load = _load_average()
            points = sweep.run_sweep(
                s,
                values=values,
                batch_size=args.batch_size,
                seq_len=args.seq_len,
                image_size=args.image_size,
                overrides=overrides,
                compare=compare,
                steps=args.steps,
                rounds=args.rounds,
                warmup=args.warmup,
                dtype=args.dtype,
                mode=args.mode,
                progress=_progress,
            )
            command = "python -m zoo.bench " + shlex.join([a if a != args.sweep else s.name for a in argv])
            document, plot = sweep.write_sweep(s, points, args.results_dir, command, f"{load} / {_load_average()}")
            print(f"## {s.name}\n\n{sweep.sweep_table(s, points)}\n")
            print(f"wrote {document} and {plot}", file=sys.stderr)
            done += points
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if any(p.result.status == "failed" for p in done) else 0


def _run_device_suite(args, argv: list[str], runtime_note: str) -> int:
    """``--suite NAME``: its runs (``--dry-run``: listed only), the report written to
    ``benchmarks/results-<platform>.md``."""
    runs = gpu_suite.SUITES[args.suite]
    if args.dry_run:
        print(gpu_suite.suite_listing(runs))
        return 0
    try:
        fixed = ("batch_size", "seq_len", "image_size", "set", "values", "profile", "dtype", "mode")
        given = [f"--{d.replace('_', '-')}" for d in fixed if getattr(args, d) != _parser().get_default(d)]
        if given:
            raise ValueError(f"the {args.suite} suite fixes each run's shapes, dtype and mode: drop {', '.join(given)}")
        gpu_suite.check_platform(args.suite)
        compare = _parse_compare(args.compare or "torch")
        results = gpu_suite.run_runs(
            runs, compare=compare, steps=args.steps, rounds=args.rounds, warmup=args.warmup, progress=_progress
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return _report(results, args, argv, compare, gpu_suite.dtypes(runs), runtime_note, write_results=True)


if __name__ == "__main__":
    sys.exit(main())
