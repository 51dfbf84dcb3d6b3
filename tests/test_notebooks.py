"""Every notebook in notebooks/ runs top to bottom without error and shows a figure (in its
quick form: ZOO_NOTEBOOK_QUICK=1, fewer epochs and examples); the stored copy carries the
outputs of its current code (scripts/run_notebooks.py made them, full size)."""

import glob
import os
import runpy

import pytest

from conftest import require_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
RUNNER = runpy.run_path(os.path.join(ROOT, "scripts", "run_notebooks.py"))  # its functions, not its main


def _outputs(nb, kind: str | None = None):
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    if kind == "error":
        return [o for o in outputs if o.get("output_type") == "error"]
    return outputs if kind is None else [o for o in outputs if kind in o.get("data", {})]


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_stored_outputs_come_from_the_current_code(path):
    nbformat = require_module("nbformat")
    stored = nbformat.read(path, as_version=4)
    fix = f"run `python scripts/run_notebooks.py {os.path.relpath(path, ROOT)}` and commit the result"
    assert stored.metadata.get("zoo", {}).get("code_sha256") == RUNNER["code_sha256"](stored), (
        f"{os.path.basename(path)}: code cells changed since the stored outputs were made: {fix}"
    )
    assert _outputs(stored, "image/png") and not _outputs(stored, "error"), fix
    # Figures at modest resolution keep the repository small.
    assert os.path.getsize(path) < 1_500_000, f"{os.path.basename(path)} is over 1.5 MB"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path):
    require_module("nbformat")
    require_module("nbclient")
    require_module("ipykernel")
    nb = RUNNER["execute"](path, timeout=600, quick=True)
    assert not _outputs(nb, "error")
    # Figures reach the notebook (a non-interactive backend would execute cleanly and show none).
    assert _outputs(nb, "image/png"), "the notebook displayed no figure"
