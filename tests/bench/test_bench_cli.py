"""``python -m zoo.bench``: JSON output, and one-line errors with exit status 2."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_cli_writes_valid_json(tmp_path, capsys):
    from zoo.bench.__main__ import main

    out = tmp_path / "bench.json"
    argv = [
        "--model",
        "mlp",
        "--image-size",
        "8",
        "--batch-size",
        "8",
        "--set",
        "hidden_sizes=(16,)",
        "--steps",
        "2",
        "--rounds",
        "1",
        "--warmup",
        "1",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert result["status"] == "ok" and result["contenders"]["zoo"]["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert result["config"]["hidden_sizes"] == [16]
    assert data["metadata"]["command"].startswith("python -m zoo.bench --model mlp")
    assert data["metadata"]["matmul_peak_flops_per_s"]["float32"] > 0
    assert "| mlp | train | float32 | 8 |" in capsys.readouterr().out


def test_cli_unknown_model_exits_2_with_one_error_line():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "--model", "mlpp"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'mlpp'") and "mlp" in lines[0]


def test_cli_bad_options_exit_2(capsys):
    from zoo.bench.__main__ import main

    assert main(["--model", "mlp", "--compare", "tensorflow"]) == 2
    assert main(["--model", "mlp", "--seq-len", "8"]) == 2
    assert main(["--model", "mlp", "--set", "hidden_sizez=3", "--steps", "1", "--rounds", "1"]) == 2
    assert main(["--model", "mlp", "--compare", "torch", "--rounds", "3"]) == 2  # a ratio needs 5 rounds
    errors = capsys.readouterr().err.strip().splitlines()
    assert [line.split(" ")[0] for line in errors if line.startswith("error")] == ["error:"] * 4


def test_a_new_report_replaces_the_old_and_keeps_the_sections_written_by_hand():
    """``--all`` rewrites ``results-<device>.md``: its report, between markers, is replaced;
    what was written below it by hand stays (and a file from before the markers keeps all
    it held, below the new report)."""
    from zoo.bench.__main__ import REPORT_END, REPORT_START, merge_report

    first = merge_report("", "# report 1\n")
    assert first == f"{REPORT_START}\n# report 1\n{REPORT_END}\n"
    by_hand = first + "\n## An A/B run\n| run | ms |\n"
    second = merge_report(by_hand, "# report 2\n")
    assert second == f"{REPORT_START}\n# report 2\n{REPORT_END}\n\n## An A/B run\n| run | ms |\n"
    assert merge_report(second, "# report 3") == second.replace("report 2", "report 3")
    old = "# an old report\n\n## notes\n"
    assert merge_report(old, "# report 4") == f"{REPORT_START}\n# report 4\n{REPORT_END}\n\n{old}"
