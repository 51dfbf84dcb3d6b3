"""Hierarchical auxiliary learning against its baseline: the same runner as
``python -m zoo.experiments.hal`` (see `zoo.experiments.hal` for the options).

    python scripts/hal_experiments.py --dataset digits --cases all --seeds 5
"""

from zoo.experiments.hal import main, run, table  # noqa: F401  (run and table: for notebooks/hierarchical.ipynb)

if __name__ == "__main__":
    main()
