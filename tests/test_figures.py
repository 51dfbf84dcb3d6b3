"""zoo.figures: every figure draws on a tiny run, the committed PNGs are the figures' own
and each is shown by the README; the benchmark parser reads the committed results."""

import pathlib

import pytest
from conftest import require_module

from zoo import figures

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "figures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# The scripts' own tests draw these three with --quick --plots (tests/test_scripts.py,
# tests/test_technique_scripts.py); zoo.figures only calls those scripts' plotting.
DRAWN_BY_SCRIPT_TESTS = {"hopfield_capacity", "init_study", "optimizer_study"}


@pytest.mark.parametrize("name", sorted(set(figures.FIGURES) - DRAWN_BY_SCRIPT_TESTS))
def test_quick_figure_writes_its_pngs(name, tmp_path):
    require_module("matplotlib")
    plt = require_module("matplotlib.pyplot")
    function, files = figures.FIGURES[name]
    written = function(str(tmp_path), quick=True)
    assert sorted(pathlib.Path(p).name for p in written) == sorted(files)
    for file in files:
        data = (tmp_path / file).read_bytes()
        assert data[:8] == PNG_MAGIC
        height, width = plt.imread(tmp_path / file).shape[:2]
        assert 50 < height < 2000 and 50 < width < 2000


def test_every_figure_is_committed_and_every_committed_png_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    declared = {file for _, files in figures.FIGURES.values() for file in files}
    committed = {p.name for p in COMMITTED.glob("*.png")}
    assert declared <= committed, f"run python -m zoo.figures --only ... for {sorted(declared - committed)}"
    unreferenced = sorted(n for n in committed if f"(docs/figures/{n})" not in readme)
    assert not unreferenced, f"README.md shows no ![...](docs/figures/NAME) for {unreferenced}"
    too_big = sorted(n for n in committed if (COMMITTED / n).stat().st_size > 150_000)
    assert not too_big, f"figures over 150 KB: {too_big}"


def test_bench_parser_reads_the_committed_results():
    parsed = figures.parse_bench_results(figures.BENCH_RESULTS.read_text())
    # Golden values from benchmarks/results-cpu.md's summary and contenders tables.
    assert parsed["ratios"]["mlp"] == (1.04, 1.01, 1.07)
    assert parsed["ratios"]["resnet18"] == (1.19, 1.08, 1.21)
    assert "rbm" not in parsed["ratios"]  # no torch contender
    assert parsed["ratios"]["seq2seq_bahdanau"] == (1.05, 1.00, 1.08)
    assert parsed["steps"]["lenet5"] == {
        "zoo": (5.71, 5.49, 5.98),
        "torch": (7.21, 6.93, 7.50),
        "flax": (18.41, 17.59, 19.25),
    }
    assert parsed["steps"]["resnet18"]["torch"] == (325.30, 320.34, 337.87)


def test_bench_parser_thousands_and_missing_torch():
    text = "\n".join(
        [
            "| benchmark | mode | step ms, median (IQR) | zoo/torch | zoo/flax |",
            "|---|---|---|---|---|",
            "| big | train | 1,234.50 (1,200.00–1,300.25) | 0.50 (0.40–0.60) | – |",
            "| small | train | 1.00 (0.90–1.10) | – | 1.10 (1.00–1.20) |",
            "",
            "| benchmark | contender | step ms, median (IQR) |",
            "|---|---|---|",
            "| big | torch | 1,000.00 (990.00–1,010.00) |",
        ]
    )
    parsed = figures.parse_bench_results(text)
    assert parsed["ratios"] == {"big": (0.5, 0.4, 0.6)}
    assert parsed["steps"] == {"big": {"torch": (1000.0, 990.0, 1010.0)}}


def test_unknown_figure_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown figure"):
        figures.make_figures(str(tmp_path), only=["lenet"])
