"""Execute notebooks top to bottom and store their outputs (figures, printed results) in
place, so they can be read on GitHub and in the documentation site without running them.

    python scripts/run_notebooks.py                 # every notebook in notebooks/
    python scripts/run_notebooks.py notebooks/cnn.ipynb

Each stored notebook records the SHA-256 of its code cells (metadata ``zoo.code_sha256``);
tests/test_notebooks.py fails when a code cell changed after the outputs were made.

The stored outputs are full runs. tests/test_notebooks.py executes each notebook quick
(``execute(path, quick=True)``: ``ZOO_NOTEBOOK_QUICK=1`` in the kernel's environment), and
a notebook may read that (``QUICK = os.environ.get("ZOO_NOTEBOOK_QUICK") == "1"``) to run
the same cells on fewer epochs, examples and steps.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_sha256(nb) -> str:
    """The digest of a notebook's code cells, in order (markdown and outputs excluded)."""
    code = "\0".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def execute(path: str, timeout: int = 900, quick: bool = False):
    """Run notebook ``path`` in a fresh kernel (working directory: the repository root);
    returns the executed notebook, outputs in it. Raises on the first failing cell.
    ``quick``: the kernel gets ``ZOO_NOTEBOOK_QUICK=1`` (else ``0``, whatever this
    process has, so that a full run is full)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    client.execute(env={**os.environ, "ZOO_NOTEBOOK_QUICK": "1" if quick else "0"})
    return nb


def main(argv: list[str]) -> None:
    import nbformat

    paths = argv or sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    for path in paths:
        start = time.perf_counter()
        nb = execute(path)
        nb.metadata["zoo"] = {"code_sha256": code_sha256(nb)}
        nbformat.write(nb, path)
        print(f"{path}: {time.perf_counter() - start:.0f} s, {os.path.getsize(path) / 1024:.0f} KiB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
